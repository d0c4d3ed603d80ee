//! EXIF orientation (1–8) applied to the pixels, so the output needs no orientation tag.

use crate::Pixels;

/// Read the orientation from a raw EXIF (TIFF) block; invalid or missing values mean 1.
pub fn exif_orientation(tiff: &[u8]) -> u8 {
    // WebP and PNG writers often keep JPEG's APP1 header in front of the TIFF payload.
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    image::metadata::Orientation::from_exif_chunk(tiff)
        .map(orientation_to_u8)
        .unwrap_or(1)
}

pub(crate) fn orientation_to_u8(o: image::metadata::Orientation) -> u8 {
    use image::metadata::Orientation::*;
    match o {
        NoTransforms => 1,
        FlipHorizontal => 2,
        Rotate180 => 3,
        FlipVertical => 4,
        Rotate90FlipH => 5,
        Rotate90 => 6,
        Rotate270FlipH => 7,
        Rotate270 => 8,
    }
}

/// Apply `orientation` to `src`, writing into `scratch` and then swapping buffers, so both
/// allocations stay reusable for the next picture.
pub fn apply(src: &mut Pixels, orientation: u8, scratch: &mut Vec<u8>) {
    if !(2..=8).contains(&orientation) {
        return;
    }
    let (w, h, c) = (
        src.width as usize,
        src.height as usize,
        src.channels as usize,
    );
    let (dw, dh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let len = w * h * c;
    if scratch.len() < len {
        scratch.resize(len, 0);
    } else {
        scratch.truncate(len);
    }
    // Destination (dx, dy) reads source pixel base + dx*step_x + dy*step_y (EXIF 2.3 §4.6.4).
    let (wi, hi) = (w as isize, h as isize);
    let (base, step_x, step_y) = match orientation {
        2 => (wi - 1, -1, wi),
        3 => ((hi - 1) * wi + wi - 1, -1, -wi),
        4 => ((hi - 1) * wi, 1, -wi),
        5 => (0, wi, 1),
        6 => ((hi - 1) * wi, -wi, 1),
        7 => ((hi - 1) * wi + wi - 1, -wi, -1),
        _ => (wi - 1, wi, -1), // 8
    };
    let m = Mapping {
        base,
        step_x,
        step_y,
        dw,
        dh,
    };
    match c {
        3 => remap::<3>(&src.data[..len], &mut scratch[..len], m),
        4 => remap::<4>(&src.data[..len], &mut scratch[..len], m),
        1 => remap::<1>(&src.data[..len], &mut scratch[..len], m),
        _ => remap_any(&src.data[..len], &mut scratch[..len], m, c),
    }
    std::mem::swap(&mut src.data, scratch);
    src.width = dw as u32;
    src.height = dh as u32;
}

#[derive(Clone, Copy)]
struct Mapping {
    base: isize,
    step_x: isize,
    step_y: isize,
    dw: usize,
    dh: usize,
}

/// Tiles keep both reads and writes within cache for the transposing orientations.
const TILE: usize = 64;

fn remap<const C: usize>(s: &[u8], d: &mut [u8], m: Mapping) {
    let src: &[[u8; C]] = s.as_chunks::<C>().0;
    let dst: &mut [[u8; C]] = d.as_chunks_mut::<C>().0;
    for ty in (0..m.dh).step_by(TILE) {
        for tx in (0..m.dw).step_by(TILE) {
            for dy in ty..(ty + TILE).min(m.dh) {
                let row = &mut dst[dy * m.dw..(dy + 1) * m.dw];
                let mut si = m.base + dy as isize * m.step_y + tx as isize * m.step_x;
                for px in &mut row[tx..(tx + TILE).min(m.dw)] {
                    *px = src[si as usize];
                    si += m.step_x;
                }
            }
        }
    }
}

fn remap_any(s: &[u8], d: &mut [u8], m: Mapping, c: usize) {
    for dy in 0..m.dh {
        for dx in 0..m.dw {
            let si = (m.base + dx as isize * m.step_x + dy as isize * m.step_y) as usize * c;
            let di = (dy * m.dw + dx) * c;
            d[di..di + c].copy_from_slice(&s[si..si + c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 picture with distinct one-channel values, as rows.
    fn grid() -> Pixels {
        Pixels {
            width: 3,
            height: 2,
            channels: 1,
            data: vec![1, 2, 3, 4, 5, 6],
        }
    }

    fn oriented(o: u8) -> (u32, u32, Vec<u8>) {
        let mut p = grid();
        apply(&mut p, o, &mut Vec::new());
        (p.width, p.height, p.data)
    }

    #[test]
    fn all_eight_orientations() {
        // Stored grid:  1 2 3 / 4 5 6 ; expected upright views per EXIF semantics.
        assert_eq!(oriented(1), (3, 2, vec![1, 2, 3, 4, 5, 6]));
        assert_eq!(oriented(2), (3, 2, vec![3, 2, 1, 6, 5, 4]));
        assert_eq!(oriented(3), (3, 2, vec![6, 5, 4, 3, 2, 1]));
        assert_eq!(oriented(4), (3, 2, vec![4, 5, 6, 1, 2, 3]));
        assert_eq!(oriented(5), (2, 3, vec![1, 4, 2, 5, 3, 6]));
        assert_eq!(oriented(6), (2, 3, vec![4, 1, 5, 2, 6, 3]));
        assert_eq!(oriented(7), (2, 3, vec![6, 3, 5, 2, 4, 1]));
        assert_eq!(oriented(8), (2, 3, vec![3, 6, 2, 5, 1, 4]));
    }

    #[test]
    fn wide_pixels_and_tiles_agree_with_the_definition() {
        // 70x3 RGB (more than one tile wide): each orientation checked against the formula.
        let (w, h) = (70usize, 3usize);
        let data: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % 251) as u8, (i / 251) as u8, 7])
            .collect();
        for o in 2..=8u8 {
            let mut p = Pixels {
                width: w as u32,
                height: h as u32,
                channels: 3,
                data: data.clone(),
            };
            apply(&mut p, o, &mut Vec::new());
            let (dw, dh) = (p.width as usize, p.height as usize);
            for dy in 0..dh {
                for dx in 0..dw {
                    let (sx, sy) = match o {
                        2 => (w - 1 - dx, dy),
                        3 => (w - 1 - dx, h - 1 - dy),
                        4 => (dx, h - 1 - dy),
                        5 => (dy, dx),
                        6 => (dy, h - 1 - dx),
                        7 => (w - 1 - dy, h - 1 - dx),
                        _ => (w - 1 - dy, dx),
                    };
                    let (a, b) = ((dy * dw + dx) * 3, (sy * w + sx) * 3);
                    assert_eq!(
                        p.data[a..a + 3],
                        data[b..b + 3],
                        "orientation {o} at ({dx},{dy})"
                    );
                }
            }
        }
    }

    #[test]
    fn invalid_values_are_identity() {
        assert_eq!(oriented(0), oriented(1));
        assert_eq!(oriented(9), oriented(1));
    }
}
