#![no_main]
//! Header parser: never panics; whatever parses re-serializes to exactly the bytes it came from.

use libfuzzer_sys::fuzz_target;
use pixseal_seal::header::{Header, PREAMBLE_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, len)) = Header::parse(data) {
        assert!(len <= data.len());
        let bytes = header.to_bytes().expect("a parsed header serializes");
        assert_eq!(&bytes[..], &data[..len]);
        assert_eq!(Header::declared_len(&data[..PREAMBLE_LEN]).ok(), Some(len));
    }
    let _ = pixseal_seal::read_header(data);
    let _ = pixseal_seal::WrappedKey::from_bytes(data);
});
