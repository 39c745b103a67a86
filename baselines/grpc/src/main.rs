//! `grpc-baseline`: Online Boutique as gRPC microservices, the paper's
//! second baseline. Each service is its own process serving its RPCs with
//! tonic; services call each other directly over HTTP/2 (no ingress, no
//! sidecars); the frontend serves the same public HTTP API as every other
//! mode and calls the services over gRPC.

mod client;
mod codec;
mod convert;
mod server;

/// Generated from `proto/boutique.proto`.
#[allow(clippy::all, clippy::pedantic)]
mod pb {
    tonic::include_proto!("hipstershop");
}

use std::net::SocketAddr;

use clap::Parser;

use crate::client::GrpcClient;

#[derive(Parser)]
#[command(name = "grpc-baseline", about = "Online Boutique as gRPC microservices (tonic), one process per service")]
struct Cli {
    /// `frontend` or a backend service: currency, productcatalog, cart,
    /// recommendation, shipping, checkout, payment, email, ad.
    #[arg(long)]
    service: String,
    #[arg(long)]
    listen: SocketAddr,
    /// Where a service this one calls listens: `SERVICE=ADDR` (repeatable;
    /// ADDR may be `HOST:PORT`, resolved at start).
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(String, SocketAddr)>,
}

fn parse_peer(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s.split_once('=').ok_or("expected SERVICE=ADDR")?;
    if !server::SERVICES.contains(&name) {
        return Err(format!("unknown service {name:?} (one of {})", server::SERVICES.join(", ")));
    }
    Ok((name.to_string(), baseline_common::resolve(addr)?))
}

fn main() {
    let cli = Cli::parse();
    // Two workers per process, as every Knative-model component has.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        // Lazy channels spawn their connection tasks on this runtime.
        let peers = GrpcClient::new(&cli.peers).unwrap_or_else(|e| fail(&format!("bad peer address: {e}")));
        if cli.service == "frontend" {
            baseline_common::frontend::serve(cli.listen, peers).await
        } else if let Err(e) = server::run(&cli.service, cli.listen, peers).await {
            fail(&e)
        }
    });
}

fn fail(message: &str) -> ! {
    eprintln!("grpc-baseline: {message}");
    std::process::exit(2);
}
