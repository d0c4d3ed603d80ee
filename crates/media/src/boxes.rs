//! ISO BMFF boxes (HEIF, MP4, MOV): a bounded big-endian reader and a box walker that never
//! reads past the bytes it was given, naming faults the way the calling container does.

use std::ops::Range;

use crate::IngestError;

/// How a container names a malformed box and a file that ends early.
#[derive(Clone, Copy)]
pub(crate) struct Faults {
    pub(crate) corrupt: fn(&str) -> IngestError,
    pub(crate) truncated: fn() -> IngestError,
}

/// A big-endian reader over one box's payload; running out is a malformed box, not truncation
/// (box sizes were already checked against the file).
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    faults: Faults,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8], faults: Faults) -> Self {
        Reader { b, pos: 0, faults }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], IngestError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| (self.faults.corrupt)("a box is shorter than its fields"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, IngestError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, IngestError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, IngestError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, IngestError> {
        let s = self.take(8)?;
        Ok(u64::from_be_bytes(s.try_into().expect("8 bytes")))
    }
    /// An unsigned field of 0, 4 or 8 bytes (the `iloc` sizes).
    pub(crate) fn uint(&mut self, size: u8) -> Result<u64, IngestError> {
        match size {
            0 => Ok(0),
            4 => Ok(self.u32()? as u64),
            8 => self.u64(),
            _ => Err((self.faults.corrupt)(
                "iloc field size other than 0, 4 or 8",
            )),
        }
    }
    /// An item id: 16 bits in version 0 boxes, 32 bits after.
    pub(crate) fn id(&mut self, wide: bool) -> Result<u32, IngestError> {
        if wide {
            self.u32()
        } else {
            Ok(self.u16()? as u32)
        }
    }
    /// The version and flags of a full box.
    pub(crate) fn full(&mut self) -> Result<(u8, u32), IngestError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }
    /// Bytes not read yet.
    pub(crate) fn left(&self) -> usize {
        self.b.len() - self.pos
    }
}

/// The boxes one after another in `b`: each one's type and payload range within `b`.
pub(crate) fn boxes(
    b: &[u8],
    faults: Faults,
) -> impl Iterator<Item = Result<([u8; 4], Range<usize>), IngestError>> + '_ {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= b.len() {
            return None;
        }
        let item = (|| {
            if b.len() - pos < 8 {
                return Err((faults.truncated)());
            }
            let size32 = u32::from_be_bytes(b[pos..pos + 4].try_into().expect("4 bytes")) as u64;
            let kind: [u8; 4] = b[pos + 4..pos + 8].try_into().expect("4 bytes");
            let (header, size) = match size32 {
                0 => (8u64, (b.len() - pos) as u64),
                1 => {
                    if b.len() - pos < 16 {
                        return Err((faults.truncated)());
                    }
                    let large = u64::from_be_bytes(b[pos + 8..pos + 16].try_into().expect("8"));
                    (16, large)
                }
                n => (8, n),
            };
            if size < header {
                return Err((faults.corrupt)("a box is smaller than its own header"));
            }
            if size > (b.len() - pos) as u64 {
                return Err((faults.truncated)());
            }
            let range = pos + header as usize..pos + size as usize;
            pos += size as usize;
            Ok((kind, range))
        })();
        failed = item.is_err();
        Some(item)
    })
}
