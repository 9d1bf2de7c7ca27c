//! Any bytes as a responder's HTTP response, cut into pieces at places the
//! input chooses: the bounded reader never panics, never returns more than
//! its cap, and gives the same answer however the bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ngx_ssl_stapling_module::fuzzing::{ResponseReader, MAX_BODY};

fn read(pieces: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut r = ResponseReader::new();
    for p in pieces {
        match r.feed(p) {
            Ok(Some(body)) => return Ok(body),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    r.finish().map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = (cut as usize).min(rest.len());
    let whole = read(&[rest]);
    let split = read(&[&rest[..at], &rest[at..]]);
    if let Ok(body) = &whole {
        assert!(body.len() <= MAX_BODY);
    }
    assert_eq!(whole.is_ok(), split.is_ok(), "the answer depends on how the bytes arrive");
    if let (Ok(a), Ok(b)) = (&whole, &split) {
        assert_eq!(a, b);
    }
});
