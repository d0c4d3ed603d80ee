//! The sanitized file written out: `ftyp`, a `moov` built from the parsed movie's fields alone
//! (creation times zero, handler names empty, language undetermined), then `mdat` boxes of at
//! most 4 MiB with the kept chunks copied from the input in their original order.

use std::io::Write;

use super::moov::{Movie, SampleTable, Sizes, Track, TrackKind};
use super::{Parsed, Source, io};
use crate::IngestError;

/// A box under construction: its size is filled in when it closes.
struct Out(Vec<u8>);

impl Out {
    fn open(&mut self, kind: &[u8; 4]) -> usize {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        self.0.extend_from_slice(kind);
        at
    }
    fn open_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> usize {
        let at = self.open(kind);
        self.u32((version as u32) << 24 | (flags & 0x00FF_FFFF));
        at
    }
    fn close(&mut self, at: usize) {
        let len = (self.0.len() - at) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

/// A duration in a header: version 0 when it fits 32 bits (unknown stays unknown).
fn times_and_duration(o: &mut Out, version: u8, timescale: u32, duration: u64) {
    if version == 1 {
        o.zeros(16);
        o.u32(timescale);
        o.u64(duration);
    } else {
        o.zeros(8);
        o.u32(timescale);
        o.u32(if duration == u64::MAX {
            u32::MAX
        } else {
            duration as u32
        });
    }
}

fn version_for(duration: u64) -> u8 {
    u8::from(duration != u64::MAX && duration >= u32::MAX as u64)
}

/// ISO 639-2 "und" packed as three 5-bit letters: the recording device's language is not
/// the video's.
const LANGUAGE_UNDETERMINED: u16 = 0x55C4;

/// Write the whole sanitized file, with `extra` (whole top-level boxes, possibly none) right
/// after `ftyp`; returns its length.
pub(super) fn write<S: Source + ?Sized>(
    src: &S,
    parsed: &Parsed,
    extra: &[u8],
    out: &mut dyn Write,
) -> Result<u64, IngestError> {
    let movie = &parsed.movie;
    // What comes before the moov: the ftyp and the extra boxes.
    let mut head = Out(Vec::new());
    let at = head.open(b"ftyp");
    head.bytes(&parsed.ftyp);
    head.close(at);
    head.bytes(extra);
    let mdats = mdats(movie);

    // The moov is written once with room for the chunk offsets, which are filled in once its
    // length places the samples: 32-bit while everything fits, 64-bit otherwise (which makes
    // the moov longer, so it is written again).
    let mut wide = false;
    let (mut moov, mut tables) = moov(movie, wide);
    let mut offsets = place(movie, &mdats, head.0.len() as u64 + moov.len() as u64);
    if offsets.iter().flatten().any(|&o| o > u32::MAX as u64) {
        wide = true;
        (moov, tables) = self::moov(movie, wide);
        offsets = place(movie, &mdats, head.0.len() as u64 + moov.len() as u64);
    }
    for (table, offsets) in tables.iter().zip(&offsets) {
        let width = if wide { 8 } else { 4 };
        for (i, &off) in offsets.iter().enumerate() {
            let at = table + i * width;
            if wide {
                moov[at..at + 8].copy_from_slice(&off.to_be_bytes());
            } else {
                moov[at..at + 4].copy_from_slice(&(off as u32).to_be_bytes());
            }
        }
    }

    let fail = |e: std::io::Error| IngestError::Internal(format!("writing the video: {e}"));
    out.write_all(&head.0).map_err(fail)?;
    out.write_all(&moov).map_err(fail)?;
    let mut written = head.0.len() as u64 + moov.len() as u64;
    let mut buf = vec![0u8; COPY_BUFFER];
    for m in &mdats {
        if m.header() == 16 {
            out.write_all(&1u32.to_be_bytes()).map_err(fail)?;
            out.write_all(b"mdat").map_err(fail)?;
            out.write_all(&(m.len + 16).to_be_bytes()).map_err(fail)?;
        } else {
            out.write_all(&((m.len + 8) as u32).to_be_bytes())
                .map_err(fail)?;
            out.write_all(b"mdat").map_err(fail)?;
        }
        for &(t, c) in &movie.layout[m.chunks.clone()] {
            let (mut from, mut left) = movie.tracks[t as usize].stbl.chunks[c as usize];
            while left > 0 {
                let n = left.min(COPY_BUFFER as u64) as usize;
                src.read_at(from, &mut buf[..n]).map_err(io)?;
                out.write_all(&buf[..n]).map_err(fail)?;
                from += n as u64;
                left -= n as u64;
            }
        }
        written += m.header() + m.len;
    }
    Ok(written)
}

/// The samples go into `mdat` boxes of at most this many bytes (a chunk larger than this has
/// one of its own). Readers that hash a file box by box (C2PA's BMFF hash, in c2pa-rs, reads
/// each box's bytes into one buffer) then need a few MiB for a video of any length, where one
/// `mdat` would make them hold the whole video.
const MDAT_MAX: u64 = 4 << 20;

/// One `mdat` box: a run of the layout's chunks.
struct Mdat {
    /// Indices into `Movie::layout`.
    chunks: std::ops::Range<usize>,
    /// Bytes of samples.
    len: u64,
}

impl Mdat {
    fn header(&self) -> u64 {
        if self.len + 8 > u32::MAX as u64 {
            16
        } else {
            8
        }
    }
}

/// The layout's chunks, in order, cut into `mdat` boxes of at most [`MDAT_MAX`] (at least one
/// box, empty for a movie without samples).
fn mdats(movie: &Movie) -> Vec<Mdat> {
    let mut out = vec![Mdat {
        chunks: 0..0,
        len: 0,
    }];
    for (i, &(t, c)) in movie.layout.iter().enumerate() {
        let len = movie.tracks[t as usize].stbl.chunks[c as usize].1;
        let last = out.last_mut().expect("one box at least");
        if last.len > 0 && last.len + len > MDAT_MAX {
            out.push(Mdat {
                chunks: i..i + 1,
                len,
            });
        } else {
            last.chunks.end = i + 1;
            last.len += len;
        }
    }
    out
}

/// Where each track's chunks land in the output when the first `mdat` starts at `at`.
fn place(movie: &Movie, mdats: &[Mdat], mut at: u64) -> Vec<Vec<u64>> {
    let mut offsets: Vec<Vec<u64>> = movie
        .tracks
        .iter()
        .map(|t| vec![0; t.stbl.chunks.len()])
        .collect();
    for m in mdats {
        at += m.header();
        for &(t, c) in &movie.layout[m.chunks.clone()] {
            offsets[t as usize][c as usize] = at;
            at += movie.tracks[t as usize].stbl.chunks[c as usize].1;
        }
    }
    offsets
}

/// Samples move through one buffer of this size.
const COPY_BUFFER: usize = 256 * 1024;

/// The rebuilt `moov` with zero chunk offsets, and where each track's offset table starts in it.
fn moov(movie: &Movie, wide: bool) -> (Vec<u8>, Vec<usize>) {
    let mut o = Out(Vec::with_capacity(64 * 1024));
    let moov = o.open(b"moov");
    let m = &movie.mvhd;
    let v = version_for(m.duration);
    let at = o.open_full(b"mvhd", v, 0);
    times_and_duration(&mut o, v, m.timescale, m.duration);
    o.u32(m.rate);
    o.u16(m.volume);
    o.zeros(10);
    o.bytes(&m.matrix);
    o.zeros(24);
    o.u32(m.next_track_id);
    o.close(at);
    let tables = movie.tracks.iter().map(|t| trak(&mut o, t, wide)).collect();
    o.close(moov);
    (o.0, tables)
}

/// A `trak`; returns where its chunk offset table's entries start.
fn trak(o: &mut Out, t: &Track, wide: bool) -> usize {
    let trak = o.open(b"trak");
    let h = &t.tkhd;
    let v = version_for(h.duration);
    let at = o.open_full(b"tkhd", v, h.flags);
    if v == 1 {
        o.zeros(16);
        o.u32(h.track_id);
        o.zeros(4);
        o.u64(h.duration);
    } else {
        o.zeros(8);
        o.u32(h.track_id);
        o.zeros(4);
        o.u32(if h.duration == u64::MAX {
            u32::MAX
        } else {
            h.duration as u32
        });
    }
    o.zeros(8);
    o.u16(h.layer);
    o.u16(h.alternate_group);
    o.u16(h.volume);
    o.zeros(2);
    o.bytes(&h.matrix);
    o.u32(h.width);
    o.u32(h.height);
    o.close(at);

    if let Some(edits) = &t.edits {
        let edts = o.open(b"edts");
        let v = u8::from(
            edits
                .iter()
                .any(|e| e.0 > u32::MAX as u64 || e.1 > i32::MAX as i64 || e.1 < i32::MIN as i64),
        );
        let at = o.open_full(b"elst", v, 0);
        o.u32(edits.len() as u32);
        for &(duration, time, rate) in edits {
            if v == 1 {
                o.u64(duration);
                o.u64(time as u64);
            } else {
                o.u32(duration as u32);
                o.u32(time as i32 as u32);
            }
            o.u32(rate);
        }
        o.close(at);
        o.close(edts);
    }

    let mdia = o.open(b"mdia");
    let v = version_for(t.media_duration);
    let at = o.open_full(b"mdhd", v, 0);
    times_and_duration(o, v, t.timescale, t.media_duration);
    o.u16(LANGUAGE_UNDETERMINED);
    o.zeros(2);
    o.close(at);
    let at = o.open_full(b"hdlr", 0, 0);
    o.zeros(4);
    o.bytes(match t.kind {
        TrackKind::Video => b"vide",
        TrackKind::Audio => b"soun",
    });
    o.zeros(12);
    o.zeros(1); // an empty name: handler names carry the recording software's
    o.close(at);

    let minf = o.open(b"minf");
    match t.kind {
        TrackKind::Video => {
            let at = o.open_full(b"vmhd", 0, 1);
            o.zeros(8);
            o.close(at);
        }
        TrackKind::Audio => {
            let at = o.open_full(b"smhd", 0, 0);
            o.zeros(4);
            o.close(at);
        }
    }
    let dinf = o.open(b"dinf");
    let dref = o.open_full(b"dref", 0, 0);
    o.u32(1);
    let url = o.open_full(b"url ", 0, 1); // self-contained: the samples are in this file
    o.close(url);
    o.close(dref);
    o.close(dinf);
    let table = stbl(o, &t.stbl, wide);
    o.close(minf);
    o.close(mdia);
    o.close(trak);
    table
}

fn stbl(o: &mut Out, t: &SampleTable, wide: bool) -> usize {
    let stbl = o.open(b"stbl");
    let at = o.open_full(b"stsd", 0, 0);
    o.u32(t.entries.len() as u32);
    for e in &t.entries {
        o.bytes(e);
    }
    o.close(at);

    let at = o.open_full(b"stts", 0, 0);
    o.u32(t.stts.len() as u32);
    for &(n, d) in &t.stts {
        o.u32(n);
        o.u32(d);
    }
    o.close(at);
    if let Some((v, runs)) = &t.ctts {
        let at = o.open_full(b"ctts", *v, 0);
        o.u32(runs.len() as u32);
        for &(n, d) in runs {
            o.u32(n);
            o.u32(d);
        }
        o.close(at);
    }
    if let Some(sync) = &t.stss {
        let at = o.open_full(b"stss", 0, 0);
        o.u32(sync.len() as u32);
        for &s in sync {
            o.u32(s);
        }
        o.close(at);
    }
    if let Some(deps) = &t.sdtp {
        let at = o.open_full(b"sdtp", 0, 0);
        o.bytes(deps);
        o.close(at);
    }
    let at = o.open_full(b"stsc", 0, 0);
    o.u32(t.stsc.len() as u32);
    for &(first, per, desc) in &t.stsc {
        o.u32(first);
        o.u32(per);
        o.u32(desc);
    }
    o.close(at);
    let at = o.open_full(b"stsz", 0, 0);
    match &t.sizes {
        Sizes::Same(s) => {
            o.u32(*s);
            o.u32(t.samples);
        }
        Sizes::Each(each) => {
            o.u32(0);
            o.u32(t.samples);
            for &s in each {
                o.u32(s);
            }
        }
    }
    o.close(at);
    let at = o.open_full(if wide { b"co64" } else { b"stco" }, 0, 0);
    o.u32(t.chunks.len() as u32);
    let table = o.0.len();
    o.zeros(t.chunks.len() * if wide { 8 } else { 4 });
    o.close(at);
    o.close(stbl);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::moov::{Mvhd, Tkhd};

    /// A one-track movie whose chunks have these lengths (nothing else about it matters here).
    fn movie(chunks: &[u64]) -> Movie {
        Movie {
            mvhd: Mvhd {
                timescale: 1000,
                duration: 0,
                rate: 0x1_0000,
                volume: 0x100,
                matrix: [0; 36],
                next_track_id: 2,
            },
            tracks: vec![Track {
                kind: TrackKind::Video,
                tkhd: Tkhd {
                    flags: 3,
                    track_id: 1,
                    duration: 0,
                    layer: 0,
                    alternate_group: 0,
                    volume: 0,
                    matrix: [0; 36],
                    width: 0,
                    height: 0,
                },
                edits: None,
                timescale: 1000,
                media_duration: 0,
                stbl: SampleTable {
                    codec: *b"avc1",
                    entries: Vec::new(),
                    stts: Vec::new(),
                    ctts: None,
                    stss: None,
                    sdtp: None,
                    stsc: Vec::new(),
                    samples: 0,
                    sizes: Sizes::Same(0),
                    chunks: chunks
                        .iter()
                        .scan(0, |at, &len| {
                            let c = (*at, len);
                            *at += len;
                            Some(c)
                        })
                        .collect(),
                },
            }],
            layout: (0..chunks.len() as u32).map(|c| (0, c)).collect(),
            duration_ms: 0,
            removed: Vec::new(),
        }
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn chunks_are_cut_into_mdat_boxes_at_chunk_boundaries() {
        let m = movie(&[3 * MIB, 2 * MIB, 5 * MIB, MIB, MIB, 2 * MIB, 1]);
        let boxes = mdats(&m);
        let runs: Vec<_> = boxes.iter().map(|b| (b.chunks.clone(), b.len)).collect();
        // 3+2 is over 4 MiB; a 5 MiB chunk has a box of its own; 1+1+2 fits, one byte more
        // does not.
        assert_eq!(
            runs,
            [
                (0..1, 3 * MIB),
                (1..2, 2 * MIB),
                (2..3, 5 * MIB),
                (3..6, 4 * MIB),
                (6..7, 1)
            ]
        );
        // Each box's 8-byte header comes before its chunks.
        let at = 1000;
        let offsets = place(&m, &boxes, at);
        let expect = [
            at + 8,
            at + 8 + 3 * MIB + 8,
            at + 16 + 5 * MIB + 8,
            at + 24 + 10 * MIB + 8,
            at + 32 + 11 * MIB,
            at + 32 + 12 * MIB,
            at + 32 + 14 * MIB + 8,
        ];
        assert_eq!(offsets[0], expect);
    }

    #[test]
    fn a_chunk_over_4_gib_gets_a_box_with_a_64_bit_size() {
        let m = movie(&[MIB, 5 << 30, MIB]);
        let boxes = mdats(&m);
        let headers: Vec<u64> = boxes.iter().map(Mdat::header).collect();
        assert_eq!(headers, [8, 16, 8]);
        let offsets = place(&m, &boxes, 0);
        assert_eq!(offsets[0], [8, MIB + 8 + 16, MIB + 8 + 16 + (5 << 30) + 8]);
        // A movie without samples still has its (empty) mdat.
        let empty = mdats(&movie(&[]));
        assert_eq!(empty.len(), 1);
        assert_eq!((empty[0].len, empty[0].header()), (0, 8));
    }
}
