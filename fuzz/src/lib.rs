//! Shared pieces of the fuzz targets: an allocator that turns an oversized
//! allocation into a crash, and the keyed-journal helpers the `journal`
//! target uses to write records and heads that authenticate.
//!
//! Every target calls [`bounded`] first, which links this crate (and so its
//! allocator) in.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The largest single allocation a target may make. The biggest legitimate
/// one is the journal reader's line buffer (4 MiB + 1, so 8 MiB of capacity);
/// anything far beyond means memory grows with the input, which is a bug.
pub const MAX_ALLOCATION: usize = 64 << 20;

/// Wraps the system allocator and aborts (a crash libFuzzer records) on an
/// allocation over [`MAX_ALLOCATION`]. libFuzzer's own `-malloc_limit_mb`
/// only works under a sanitizer; this works with `--sanitizer none` too.
struct Capped;

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // No formatting: it could allocate.
        let _ = std::io::stderr()
            .write_all(b"warden-fuzz: an allocation over MAX_ALLOCATION (64 MiB): memory grows with the input\n");
        std::process::abort();
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; `check` only reads the size.
#[allow(
    unsafe_code,
    reason = "a GlobalAlloc implementation is unsafe by definition"
)]
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

/// Call at the start of every target: links the capped allocator in.
pub fn bounded() {}

/// The key every journal the `journal` target writes is keyed with.
pub const KEY: [u8; 32] = [7; 32];

/// The `prev` of the first record (the journal's genesis value).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The journal reader's line limit (`MAX_LINE` in warden-agent, 4 MiB).
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// HMAC-SHA256 of `data` under [`KEY`], hex: what `HostKey::tag` computes.
pub fn tag(data: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&KEY) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

const MAC_KEY: &[u8] = b",\"mac\":\"";
const PREV_KEY: &[u8] = b",\"prev\":\"";
/// `,"mac":"` + 64 hex digits + `"}`.
const MAC_SUFFIX: usize = 8 + 64 + 2;
/// `,"prev":"` + 64 hex digits + `"`.
const PREV_SUFFIX: usize = 9 + 64 + 1;

/// Make the records in `journal` authenticate: every line that ends like a
/// record (`…,"mac":"<64 hex>"}`) gets the MAC the writer would have given
/// it, and with `chain` its `prev` (when it directly precedes `mac`) is set
/// to the MAC of the record before. Returns the last MAC (the genesis value
/// when no line was rewritten) and the number of lines.
///
/// The fuzzer cannot compute HMACs, so without this it would never get past
/// the MAC check into the chain, head and writer logic.
pub fn remac(journal: &mut [u8], chain: bool) -> (String, u64) {
    let mut last = GENESIS.to_string();
    let mut lines = 0;
    let mut start = 0;
    while start < journal.len() {
        // memchr, not a byte loop: with compare tracing, a per-byte loop over
        // a 4 MiB line costs more than everything the target checks.
        let end = memchr::memchr(b'\n', &journal[start..]).map_or(journal.len(), |i| start + i);
        let line = &mut journal[start..end];
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let mut len = line.len();
        while len > 0 && line[len - 1] == b'\r' {
            len -= 1;
        }
        let body = &mut line[..len];
        if len < MAC_SUFFIX || !body.ends_with(b"\"}") {
            continue;
        }
        let cut = len - MAC_SUFFIX;
        if &body[cut..cut + MAC_KEY.len()] != MAC_KEY {
            continue;
        }
        if chain
            && cut >= PREV_SUFFIX
            && &body[cut - PREV_SUFFIX..cut - PREV_SUFFIX + PREV_KEY.len()] == PREV_KEY
            && body[cut - 1] == b'"'
        {
            body[cut - 65..cut - 1].copy_from_slice(last.as_bytes());
        }
        // The reader decodes lossily and MACs the text up to `mac`, closed
        // with `}`; the suffix is ASCII, so decoding the prefix alone agrees.
        let mut text = String::from_utf8_lossy(&body[..cut]).into_owned();
        text.push('}');
        let mac = tag(text.as_bytes());
        body[cut + MAC_KEY.len()..cut + MAC_KEY.len() + 64].copy_from_slice(mac.as_bytes());
        last = mac;
    }
    (last, lines)
}

/// A `<journal>.head` file the writer would have written for `records`
/// records ending in `mac`, keyed with [`KEY`].
pub fn head(records: u64, mac: &str) -> Vec<u8> {
    let ts = "2026-01-01T00:00:00Z";
    let tag = tag(format!("warden-journal-head-v1\n{records}\n{mac}\n{ts}").as_bytes());
    serde_json::to_vec(&serde_json::json!({
        "records": records, "mac": mac, "ts": ts, "tag": tag,
    }))
    .unwrap_or_default()
}
