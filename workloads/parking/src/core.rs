//! Parking's logic, transport-free: find the JPEG in the upload, derive a
//! plate from it, look it up, index and persist new vehicles, charge.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Mutex;

use serde::Serialize;

/// The sample upload (150x150, ~3.7 KB, drawn for this project).
pub const SAMPLE_JPEG: &[u8] = include_bytes!("../data/car.jpg");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// Route 1: detection -> search -> index -> persist -> charging.
    New,
    /// Route 2: detection -> search -> charging.
    Known,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ImageError {
    pub status: u16,
    pub message: String,
}

fn err(status: u16, message: impl Into<String>) -> ImageError {
    ImageError { status, message: message.into() }
}

/// A JPEG starts with SOI + a marker and ends with EOI.
pub fn is_jpeg(b: &[u8]) -> bool {
    b.len() >= 6 && b[..3] == [0xff, 0xd8, 0xff] && b[b.len() - 2..] == [0xff, 0xd9]
}

/// Where the image is inside the request body: the whole body for a raw
/// upload, the `file` part of a multipart form. A range, so functions read
/// the image where it lies (in the slot, for SPRIGHT).
pub fn find_image(content_type: &str, body: &[u8]) -> Result<Range<usize>, ImageError> {
    let ct = content_type.trim().to_ascii_lowercase();
    let range = if ct.starts_with("multipart/form-data") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"'))
            .ok_or_else(|| err(400, "multipart upload without a boundary"))?;
        spright::wire::form::multipart(body, |b| multipart_file(b, boundary))?
    } else if ct.starts_with("image/jpeg") || ct.starts_with("application/octet-stream") || ct.is_empty() {
        0..body.len()
    } else {
        return Err(err(415, format!("unsupported content type {content_type:?}: send image/jpeg or multipart/form-data")));
    };
    if !is_jpeg(&body[range.clone()]) {
        return Err(err(415, "the upload is not a JPEG image"));
    }
    Ok(range)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The body range of the part named `file`.
fn multipart_file(body: &[u8], boundary: &str) -> Result<Range<usize>, ImageError> {
    let delim = format!("--{boundary}");
    let mut pos = find(body, delim.as_bytes(), 0).ok_or_else(|| err(400, "multipart body without its boundary"))?;
    loop {
        let headers_start = pos + delim.len();
        if body.get(headers_start..headers_start + 2) == Some(b"--") {
            return Err(err(400, "multipart upload has no `file` part"));
        }
        let headers_end = find(body, b"\r\n\r\n", headers_start).ok_or_else(|| err(400, "malformed multipart part"))?;
        let headers = String::from_utf8_lossy(&body[headers_start..headers_end]).to_ascii_lowercase();
        let content_start = headers_end + 4;
        let next = find(body, format!("\r\n{delim}").as_bytes(), content_start).ok_or_else(|| err(400, "unterminated multipart part"))?;
        if headers.contains("name=\"file\"") {
            return Ok(content_start..next);
        }
        pos = next + 2;
    }
}

/// FNV-1a 64 (stable across builds and modes).
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The plate "recognised" in an image: derived from its bytes.
pub fn plate(image: &[u8]) -> String {
    let h = fnv(image);
    let l = |s: u32| (b'A' + ((h >> s) % 26) as u8) as char;
    format!("{}{}{}-{:04}", l(0), l(8), l(16), (h >> 24) % 10_000)
}

/// A copy of `jpeg` with a comment segment, so a load generator can send
/// distinct images (and so distinct plates) that are still valid JPEGs.
pub fn with_comment(jpeg: &[u8], comment: &str) -> Vec<u8> {
    let c = comment.as_bytes();
    let len = (c.len() + 2) as u16;
    let mut out = Vec::with_capacity(jpeg.len() + c.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xff, 0xfe]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(c);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Plates the search function has seen this run.
#[derive(Default)]
pub struct SeenPlates(Mutex<HashSet<String>>);

impl SeenPlates {
    /// Whether `plate` was seen before (and remember it).
    pub fn check_and_insert(&self, plate: &str) -> bool {
        !self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(plate.to_string())
    }
}

pub const SPOTS: u64 = 500;

/// The index: plate -> parking spot (per run, in memory).
#[derive(Default)]
pub struct SpotIndex(Mutex<HashMap<String, u32>>);

impl SpotIndex {
    pub fn assign(&self, plate: &str) -> u32 {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(plate.to_string())
            .or_insert_with(|| (fnv(plate.as_bytes()) % SPOTS + 1) as u32)
    }
}

/// The persisted sessions (per run, in memory).
#[derive(Default)]
pub struct SessionStore(Mutex<Vec<(String, u32)>>);

impl SessionStore {
    /// Appends a record; returns how many there are.
    pub fn append(&self, plate: &str, spot: u32) -> u32 {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.push((plate.to_string(), spot));
        v.len() as u32
    }
}

/// Cents charged: nothing when a vehicle arrives, 2.50 per hour (1 to 8,
/// from the plate) when a known one leaves.
pub fn fee_cents(route: Route, plate: &str) -> u64 {
    match route {
        Route::New => 0,
        Route::Known => 250 * (fnv(plate.as_bytes()) % 8 + 1),
    }
}

#[derive(Debug, Serialize)]
pub struct Receipt {
    pub plate: String,
    pub route: Route,
    pub seen_before: bool,
    pub spot: Option<u32>,
    pub records: Option<u32>,
    /// "12.50"
    pub fee_usd: String,
    pub image_bytes: usize,
}

pub fn fee_text(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_detection_and_sample() {
        assert!(is_jpeg(SAMPLE_JPEG));
        assert!((3_000..4_500).contains(&SAMPLE_JPEG.len()), "about 3.7 KB");
        assert!(!is_jpeg(b"GIF89a......"));
        assert_eq!(find_image("image/jpeg", SAMPLE_JPEG), Ok(0..SAMPLE_JPEG.len()));
        assert_eq!(find_image("image/png", SAMPLE_JPEG).unwrap_err().status, 415);
        assert_eq!(find_image("image/jpeg", b"not a picture at all").unwrap_err().status, 415);
    }

    #[test]
    fn multipart_file_part_is_found_in_place() {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"car.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        let start = body.len();
        body.extend_from_slice(SAMPLE_JPEG);
        let end = body.len();
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        assert_eq!(find_image("multipart/form-data; boundary=XyZ", &body), Ok(start..end));
        assert_eq!(find_image("multipart/form-data", &body).unwrap_err().status, 400);
        let no_file = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ--\r\n";
        assert_eq!(find_image("multipart/form-data; boundary=XyZ", no_file).unwrap_err().message, "multipart upload has no `file` part");
    }

    #[test]
    fn plates_and_stores() {
        let p = plate(SAMPLE_JPEG);
        assert_eq!(p.len(), 8);
        assert_eq!(p, plate(SAMPLE_JPEG));
        let other = with_comment(SAMPLE_JPEG, "car 42");
        assert!(is_jpeg(&other));
        assert_ne!(plate(&other), p);
        let seen = SeenPlates::default();
        assert!(!seen.check_and_insert(&p));
        assert!(seen.check_and_insert(&p));
        let idx = SpotIndex::default();
        assert_eq!(idx.assign(&p), idx.assign(&p));
        assert!((1..=SPOTS as u32).contains(&idx.assign(&p)));
        let store = SessionStore::default();
        assert_eq!((store.append(&p, 1), store.append(&p, 1)), (1, 2));
        assert_eq!(fee_cents(Route::New, &p), 0);
        assert!(fee_cents(Route::Known, &p).is_multiple_of(250) && fee_cents(Route::Known, &p) > 0);
        assert_eq!(fee_text(1250), "12.50");
    }
}
