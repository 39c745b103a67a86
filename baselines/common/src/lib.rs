//! What the baselines share: HTTP plumbing ([`http`]) and Online
//! Boutique's HTTP frontend over any `BoutiqueApi` ([`frontend`]).

pub mod frontend;
pub mod http;
