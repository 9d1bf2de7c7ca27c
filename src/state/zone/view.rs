//! What an entry says, as plain values: where its staple came from, how
//! its last fetch ended, and a copy of the whole entry taken under the lock
//! and read without it (the status page).

use crate::ocsp::response::CertStatus;

/// The longest `last_error` kept (longer messages are cut).
pub const LAST_ERROR_LEN: usize = 120;

/// Where the staple currently held came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StapleSource {
    None = 0,
    File = 1,
    Fetched = 2,
    Store = 3,
}

/// How the last fetch of an entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FetchResult {
    None = 0,
    Ok = 1,
    Failed = 2,
    Revoked = 3,
}

impl FetchResult {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchResult::None => "none",
            FetchResult::Ok => "ok",
            FetchResult::Failed => "failed",
            FetchResult::Revoked => "revoked",
        }
    }
}

/// A plain copy of an entry (for the status page).
#[derive(Debug, Clone, Copy)]
pub struct EntryView {
    pub source: StapleSource,
    pub has_staple: bool,
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: i64,
    pub next_refresh: i64,
    pub last_fetch: i64,
    pub last_result: FetchResult,
    pub last_error: [u8; LAST_ERROR_LEN],
    pub last_error_len: usize,
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    /// Fetches failed in a row since the last one that brought a staple.
    pub failures: u32,
    pub stapled: u64,
    pub unstapled: u64,
    pub bytes: usize,
    /// Its last fetched staple did not fit in the zone.
    pub no_room: bool,
}

impl EntryView {
    pub fn error(&self) -> String {
        String::from_utf8_lossy(&self.last_error[..self.last_error_len.min(LAST_ERROR_LEN)]).into_owned()
    }

    /// A staple that may be served at `now`.
    pub fn valid(&self, now: i64) -> bool {
        self.has_staple && (self.next_update == 0 || self.next_update > now)
    }

    pub fn status_str(&self) -> &'static str {
        if self.has_staple {
            self.status.as_str()
        } else if self.last_result == FetchResult::Revoked {
            "revoked"
        } else {
            "none"
        }
    }
}
