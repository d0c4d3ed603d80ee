//! HEIF/AVIF container walk (ISO BMFF `meta` boxes): the primary image's size, tiling, coding
//! and orientation read from the boxes alone, so limits are enforced and lies are named before
//! libheif decodes anything.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::boxes::{Faults, Reader};
use crate::jpeg::check_dimensions;
use crate::{Format, IngestError, Limits};

/// What the walk learned about the primary image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeifHeader {
    /// Size of the primary image as stored (before `irot`).
    pub width: u32,
    pub height: u32,
    /// Coded tiles the primary image is assembled from (1 when it is not a grid).
    pub tiles: u64,
    /// Items declared in the file (images, metadata, thumbnails, auxiliary images).
    pub items: u64,
    /// `irot`/`imir` of the primary image as the EXIF orientation that does the same (1 = none).
    pub orientation: u8,
}

/// Chains of derived images (a grid of an identity of a grid...) deeper than this are refused;
/// real files derive once.
const MAX_DERIVATION_DEPTH: usize = 4;

fn corrupt(what: &str) -> IngestError {
    IngestError::corrupt(format!("HEIF container: {what}"))
}

/// This container's faults: HEIF-named corruption and truncation.
const FAULTS: Faults = Faults {
    corrupt,
    truncated: || IngestError::truncated("HEIF"),
};

fn reader(b: &[u8]) -> Reader<'_> {
    Reader::new(b, FAULTS)
}

fn boxes(b: &[u8]) -> impl Iterator<Item = Result<([u8; 4], Range<usize>), IngestError>> + '_ {
    crate::boxes::boxes(b, FAULTS)
}

/// Where one item's bytes are.
#[derive(Debug, Clone)]
struct Location {
    /// 0: file offsets, 1: inside `idat`, 2: other items (not accepted).
    method: u8,
    extents: Vec<(u64, u64)>,
}

#[derive(Default)]
struct Meta<'a> {
    handler: Option<[u8; 4]>,
    primary: Option<u32>,
    declared_items: u64,
    types: HashMap<u32, [u8; 4]>,
    locations: HashMap<u32, Location>,
    /// `dimg` references: derived item → its inputs, in order.
    dimg: HashMap<u32, Vec<u32>>,
    /// Property boxes in `ipco` order (index 1 is the first).
    properties: Vec<([u8; 4], &'a [u8])>,
    /// Item → property indices, in `ipma` order.
    associations: HashMap<u32, Vec<u16>>,
    idat: Option<&'a [u8]>,
}

/// Walk the container, check the primary image against `limits`, and say what it is.
pub fn walk(b: &[u8], format: Format, limits: &Limits) -> Result<HeifHeader, IngestError> {
    let mut meta = None;
    for (n, item) in boxes(b).enumerate() {
        let (kind, range) = item?;
        if n == 0 && &kind != b"ftyp" {
            return Err(corrupt("the file does not start with an ftyp box"));
        }
        if &kind == b"meta" {
            if meta.is_some() {
                return Err(corrupt("more than one top-level meta box"));
            }
            meta = Some(read_meta(&b[range], limits)?);
        }
    }
    let meta = meta.ok_or_else(|| corrupt("no meta box: not a still image"))?;
    if meta.handler != Some(*b"pict") {
        return Err(corrupt(
            "the meta box is not a picture (handler is not 'pict')",
        ));
    }
    let primary = meta
        .primary
        .ok_or_else(|| corrupt("no primary item (pitm)"))?;
    check_item(&meta, b, primary, format, limits, 0, &mut HashSet::new())?;
    let (width, height) = meta.ispe(primary)?;
    let tiles = tile_count(&meta, primary);
    Ok(HeifHeader {
        width,
        height,
        tiles,
        items: meta.declared_items,
        orientation: meta.orientation(primary),
    })
}

fn read_meta<'a>(payload: &'a [u8], limits: &Limits) -> Result<Meta<'a>, IngestError> {
    let mut r = reader(payload);
    r.full()?;
    let mut m = Meta::default();
    for item in boxes(r.rest()) {
        let (kind, range) = item.map_err(|_| corrupt("a box inside meta overruns it"))?;
        let body = &r.rest()[range];
        match &kind {
            b"hdlr" => {
                let mut h = reader(body);
                h.full()?;
                h.u32()?; // pre_defined
                m.handler = Some(h.take(4)?.try_into().expect("4 bytes"));
            }
            b"pitm" => {
                let mut p = reader(body);
                let (v, _) = p.full()?;
                m.primary = Some(p.id(v > 0)?);
            }
            b"iinf" => read_iinf(body, limits, &mut m)?,
            b"iloc" => read_iloc(body, limits, &mut m)?,
            b"iref" => read_iref(body, &mut m)?,
            b"iprp" => read_iprp(body, &mut m)?,
            b"idat" => m.idat = Some(body),
            _ => {}
        }
    }
    Ok(m)
}

fn too_many_items(n: u64, limits: &Limits) -> IngestError {
    IngestError::DecodeTooCostly(format!(
        "HEIF declares {n} items, over the max_heif_items limit of {}",
        limits.max_heif_items
    ))
}

fn read_iinf<'a>(body: &'a [u8], limits: &Limits, m: &mut Meta<'a>) -> Result<(), IngestError> {
    let mut r = reader(body);
    let (v, _) = r.full()?;
    let count = if v == 0 {
        r.u16()? as u64
    } else {
        r.u32()? as u64
    };
    if count > limits.max_heif_items as u64 {
        return Err(too_many_items(count, limits));
    }
    m.declared_items = count;
    for item in boxes(r.rest()).take(count as usize) {
        let (kind, range) = item.map_err(|_| corrupt("an infe box overruns iinf"))?;
        if &kind != b"infe" {
            continue;
        }
        let mut e = reader(&r.rest()[range]);
        let (ev, _) = e.full()?;
        if ev < 2 {
            continue; // versions 0 and 1 describe files, not image items
        }
        let id = e.id(ev > 2)?;
        e.u16()?; // protection index
        let ty: [u8; 4] = e.take(4)?.try_into().expect("4 bytes");
        m.types.insert(id, ty);
    }
    Ok(())
}

fn read_iloc(body: &[u8], limits: &Limits, m: &mut Meta<'_>) -> Result<(), IngestError> {
    let mut r = reader(body);
    let (v, _) = r.full()?;
    if v > 2 {
        return Err(corrupt("iloc version over 2"));
    }
    let sizes = r.u8()?;
    let (offset_size, length_size) = (sizes >> 4, sizes & 0xF);
    let sizes = r.u8()?;
    let base_offset_size = sizes >> 4;
    let index_size = if v > 0 { sizes & 0xF } else { 0 };
    let count = if v < 2 {
        r.u16()? as u64
    } else {
        r.u32()? as u64
    };
    if count > limits.max_heif_items as u64 {
        return Err(too_many_items(count, limits));
    }
    for _ in 0..count {
        let id = r.id(v == 2)?;
        let method = if v > 0 { (r.u16()? & 0xF) as u8 } else { 0 };
        r.u16()?; // data reference index
        let base = r.uint(base_offset_size)?;
        let extents = r.u16()?;
        let mut loc = Location {
            method,
            extents: Vec::with_capacity(extents.min(64) as usize),
        };
        for _ in 0..extents {
            if index_size > 0 {
                r.uint(index_size)?;
            }
            let offset = r.uint(offset_size)?;
            let length = r.uint(length_size)?;
            let start = base
                .checked_add(offset)
                .ok_or_else(|| corrupt("an iloc offset overflows"))?;
            loc.extents.push((start, length));
        }
        m.locations.insert(id, loc);
    }
    Ok(())
}

fn read_iref(body: &[u8], m: &mut Meta<'_>) -> Result<(), IngestError> {
    let mut r = reader(body);
    let (v, _) = r.full()?;
    for item in boxes(r.rest()) {
        let (kind, range) = item.map_err(|_| corrupt("a reference box overruns iref"))?;
        let mut e = reader(&r.rest()[range]);
        let from = e.id(v > 0)?;
        let n = e.u16()?;
        let mut to = Vec::with_capacity(n as usize);
        for _ in 0..n {
            to.push(e.id(v > 0)?);
        }
        if &kind == b"dimg" {
            m.dimg.entry(from).or_default().extend(to);
        }
    }
    Ok(())
}

fn read_iprp<'a>(body: &'a [u8], m: &mut Meta<'a>) -> Result<(), IngestError> {
    for item in boxes(body) {
        let (kind, range) = item.map_err(|_| corrupt("a box overruns iprp"))?;
        let inner = &body[range];
        match &kind {
            b"ipco" => {
                for p in boxes(inner) {
                    let (pk, pr) = p.map_err(|_| corrupt("a property overruns ipco"))?;
                    m.properties.push((pk, &inner[pr]));
                }
            }
            b"ipma" => {
                let mut r = reader(inner);
                let (v, flags) = r.full()?;
                let entries = r.u32()?;
                for _ in 0..entries {
                    let id = r.id(v > 0)?;
                    let n = r.u8()?;
                    let list = m.associations.entry(id).or_default();
                    for _ in 0..n {
                        let index = if flags & 1 == 1 {
                            r.u16()? & 0x7FFF
                        } else {
                            (r.u8()? & 0x7F) as u16
                        };
                        list.push(index);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl<'a> Meta<'a> {
    /// The properties associated with `item`, in association order.
    fn props(&self, item: u32) -> impl Iterator<Item = ([u8; 4], &'a [u8])> + '_ {
        self.associations
            .get(&item)
            .into_iter()
            .flatten()
            .filter_map(|&i| {
                i.checked_sub(1)
                    .and_then(|i| self.properties.get(i as usize))
            })
            .copied()
    }

    fn has_prop(&self, item: u32, kind: &[u8; 4]) -> bool {
        self.props(item).any(|(k, _)| &k == kind)
    }

    /// The item's `ispe` (image spatial extents): required for every image item.
    fn ispe(&self, item: u32) -> Result<(u32, u32), IngestError> {
        let (_, body) = self
            .props(item)
            .find(|(k, _)| k == b"ispe")
            .ok_or_else(|| corrupt("an image item has no ispe (size) property"))?;
        let mut r = reader(body);
        r.full()?;
        Ok((r.u32()?, r.u32()?))
    }

    /// `irot` and `imir` composed, as the EXIF orientation that does the same.
    fn orientation(&self, item: u32) -> u8 {
        let mut m = Orient::IDENTITY;
        for (kind, body) in self.props(item) {
            let step = match (&kind, body.first()) {
                (b"irot", Some(a)) => Orient::ccw(a & 3),
                // Axis 0 is the vertical axis (left and right swap), 1 the horizontal one.
                (b"imir", Some(a)) if a & 1 == 0 => Orient::FLIP_X,
                (b"imir", Some(_)) => Orient::FLIP_Y,
                _ => continue,
            };
            m = step.after(m);
        }
        m.exif()
    }

    /// Where an item's extents point: its location and the bytes they index (the file, or
    /// `idat`).
    fn source(&self, file: &'a [u8], item: u32) -> Result<(&Location, &'a [u8]), IngestError> {
        let loc = self
            .locations
            .get(&item)
            .ok_or_else(|| corrupt("an image item has no location (iloc)"))?;
        let source = match loc.method {
            0 => file,
            1 => self
                .idat
                .ok_or_else(|| corrupt("an item lives in a missing idat box"))?,
            _ => {
                return Err(IngestError::UnsupportedFormat(
                    "HEIF items built from other items are not supported".into(),
                ));
            }
        };
        if loc.extents.is_empty() {
            return Err(corrupt("an image item has no data"));
        }
        Ok((loc, source))
    }

    /// An item's extents as ranges of its source, each checked to lie within it.
    fn extents(
        &self,
        file: &'a [u8],
        item: u32,
    ) -> Result<(Vec<Range<usize>>, &'a [u8]), IngestError> {
        let (loc, source) = self.source(file, item)?;
        let mut ranges = Vec::with_capacity(loc.extents.len());
        for &(start, len) in &loc.extents {
            // A length of 0 means "to the end of the source".
            let end = match len {
                0 => source.len() as u64,
                _ => start
                    .checked_add(len)
                    .ok_or_else(|| corrupt("an iloc extent overflows"))?,
            };
            if start > end || end > source.len() as u64 {
                return Err(IngestError::truncated("HEIF item"));
            }
            ranges.push(start as usize..end as usize);
        }
        Ok((ranges, source))
    }

    /// The bytes of an item that lives in `idat` or in the file.
    fn item_data(&self, file: &'a [u8], item: u32) -> Result<Vec<u8>, IngestError> {
        let (ranges, source) = self.extents(file, item)?;
        Ok(ranges
            .into_iter()
            .flat_map(|r| &source[r])
            .copied()
            .collect())
    }
}

/// The grid descriptor of a `grid` item: rows, columns, output size.
fn grid_layout(data: &[u8]) -> Result<(u32, u32, u32, u32), IngestError> {
    let mut r = reader(data);
    let _version = r.u8()?;
    let flags = r.u8()?;
    let rows = r.u8()? as u32 + 1;
    let cols = r.u8()? as u32 + 1;
    let (w, h) = if flags & 1 == 1 {
        (r.u32()?, r.u32()?)
    } else {
        (r.u16()? as u32, r.u16()? as u32)
    };
    Ok((rows, cols, w, h))
}

fn tile_count(m: &Meta<'_>, item: u32) -> u64 {
    match m.types.get(&item) {
        Some(b"grid") => m.dimg.get(&item).map_or(0, |t| t.len() as u64),
        Some(b"iden") => m
            .dimg
            .get(&item)
            .and_then(|t| t.first())
            .map_or(1, |&t| tile_count(m, t)),
        _ => 1,
    }
}

/// Check one image item (and what it derives from) before it is decoded.
fn check_item(
    m: &Meta<'_>,
    file: &[u8],
    item: u32,
    format: Format,
    limits: &Limits,
    depth: usize,
    seen: &mut HashSet<u32>,
) -> Result<(), IngestError> {
    if !seen.insert(item) || depth > MAX_DERIVATION_DEPTH {
        return Err(corrupt("derived images reference each other in a loop"));
    }
    let ty = m
        .types
        .get(&item)
        .ok_or_else(|| corrupt("the primary item is not declared (iinf)"))?;
    let (w, h) = m.ispe(item)?;
    check_dimensions(w as u64, h as u64, 1, limits)?;
    let inputs = || -> Result<&Vec<u32>, IngestError> {
        m.dimg
            .get(&item)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| corrupt("a derived image names no input (dimg)"))
    };
    match (ty, format) {
        (b"hvc1", Format::Heif) | (b"av01", Format::Avif) => {
            let config = if format == Format::Heif {
                b"hvcC"
            } else {
                b"av1C"
            };
            if !m.has_prop(item, config) {
                return Err(corrupt(if format == Format::Heif {
                    "an HEVC image has no decoder configuration (hvcC)"
                } else {
                    "an AV1 image has no decoder configuration (av1C)"
                }));
            }
            m.extents(file, item).map(drop)
        }
        (b"hvc1", Format::Avif) => Err(corrupt(
            "the brands say AVIF but the image is coded with HEVC",
        )),
        (b"av01", _) => Err(corrupt(
            "the brands say HEIC but the image is coded with AV1",
        )),
        (b"grid", _) => {
            let (rows, cols, gw, gh) = grid_layout(&m.item_data(file, item)?)?;
            let tiles = rows as u64 * cols as u64;
            if tiles > limits.max_heif_tiles as u64 {
                return Err(IngestError::DecodeTooCostly(format!(
                    "HEIF grid of {rows}x{cols} = {tiles} tiles, over the max_heif_tiles limit of {}",
                    limits.max_heif_tiles
                )));
            }
            if (gw, gh) != (w, h) {
                return Err(corrupt("the grid's size disagrees with its ispe"));
            }
            let refs = inputs()?;
            if refs.len() as u64 != tiles {
                return Err(corrupt("a grid's tile count disagrees with its references"));
            }
            // Every tile shares one size; the tiles must cover the output by less than a tile
            // too much, so the decoded canvas stays within the limits checked above.
            let first = refs[0];
            let (tw, th) = m.ispe(first)?;
            let canvas = (tw as u64 * cols as u64, th as u64 * rows as u64);
            if canvas.0 < gw as u64 || canvas.1 < gh as u64 {
                return Err(corrupt("the grid's tiles do not cover its size"));
            }
            if canvas.0 - gw as u64 >= tw as u64 || canvas.1 - gh as u64 >= th as u64 {
                return Err(corrupt(
                    "the grid's tiles overhang its size by a whole tile",
                ));
            }
            check_dimensions(canvas.0, canvas.1, 1, limits)?;
            for &tile in refs {
                if !matches!(m.types.get(&tile), Some(b"hvc1" | b"av01")) {
                    return Err(corrupt(
                        "a grid tile is not a coded image (nested or looping grids)",
                    ));
                }
                if m.ispe(tile)? != (tw, th) {
                    return Err(corrupt("grid tiles differ in size"));
                }
                if !seen.insert(tile) {
                    // The same tile used twice is legal; it is checked once.
                    continue;
                }
                let config = if format == Format::Heif {
                    b"hvcC"
                } else {
                    b"av1C"
                };
                match m.types.get(&tile) {
                    Some(b"hvc1") if format == Format::Avif => {
                        return Err(corrupt(
                            "the brands say AVIF but the tiles are coded with HEVC",
                        ));
                    }
                    Some(b"av01") if format == Format::Heif => {
                        return Err(corrupt(
                            "the brands say HEIC but the tiles are coded with AV1",
                        ));
                    }
                    _ => {}
                }
                if !m.has_prop(tile, config) {
                    return Err(corrupt(
                        "a grid tile has no decoder configuration (hvcC/av1C)",
                    ));
                }
                m.extents(file, tile)?;
            }
            Ok(())
        }
        (b"iden", _) => {
            let refs = inputs()?;
            check_item(m, file, refs[0], format, limits, depth + 1, seen)
        }
        // A gain-map composite: libheif picks its base image; the limits above still hold.
        (b"tmap", _) => Ok(()),
        (other, _) => Err(IngestError::UnsupportedFormat(format!(
            "HEIF primary image coded as '{}' is not supported (HEVC and AV1 are)",
            String::from_utf8_lossy(other).escape_default()
        ))),
    }
}

/// A rotation/mirror as the 2×2 integer matrix it applies to (x, y), y pointing down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Orient([i8; 4]);

impl Orient {
    const IDENTITY: Orient = Orient([1, 0, 0, 1]);
    const FLIP_X: Orient = Orient([-1, 0, 0, 1]);
    const FLIP_Y: Orient = Orient([1, 0, 0, -1]);
    /// The EXIF orientations 1–8, in order.
    const EXIF: [Orient; 8] = [
        Orient::IDENTITY,
        Orient::FLIP_X,
        Orient([-1, 0, 0, -1]),
        Orient::FLIP_Y,
        Orient([0, 1, 1, 0]),
        Orient([0, -1, 1, 0]),
        Orient([0, -1, -1, 0]),
        Orient([0, 1, -1, 0]),
    ];

    /// `quarter_turns` × 90° anticlockwise (what `irot` says).
    fn ccw(quarter_turns: u8) -> Orient {
        (0..quarter_turns).fold(Orient::IDENTITY, |m, _| Orient::EXIF[7].after(m))
    }

    /// `self` applied after `first`.
    fn after(self, first: Orient) -> Orient {
        let ([a, b, c, d], [e, f, g, h]) = (self.0, first.0);
        Orient([a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h])
    }

    fn exif(self) -> u8 {
        let i = Orient::EXIF
            .iter()
            .position(|&o| o == self)
            .expect("closed group");
        i as u8 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irot_and_imir_compose_to_exif_orientations() {
        assert_eq!(Orient::ccw(0).exif(), 1);
        assert_eq!(Orient::ccw(1).exif(), 8);
        assert_eq!(Orient::ccw(2).exif(), 3);
        assert_eq!(Orient::ccw(3).exif(), 6);
        assert_eq!(Orient::FLIP_X.exif(), 2);
        assert_eq!(Orient::FLIP_Y.exif(), 4);
        // A quarter turn anticlockwise, then left and right swapped: the top-right corner stays
        // put, a mirror across the anti-diagonal (transverse).
        assert_eq!(Orient::FLIP_X.after(Orient::ccw(1)).exif(), 7);
        assert_eq!(Orient::FLIP_X.after(Orient::ccw(3)).exif(), 5);
    }

    #[test]
    fn boxes_past_the_end_are_truncation_and_tiny_sizes_corruption() {
        let past = b"\0\0\0\x20ftypheic";
        assert_eq!(boxes(past).next().unwrap().unwrap_err().code(), "truncated");
        let tiny = b"\0\0\0\x04ftypheic";
        assert_eq!(boxes(tiny).next().unwrap().unwrap_err().code(), "corrupt");
    }
}
