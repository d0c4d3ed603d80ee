//! EXIF orientation (1–8) applied to the pixels, so the output needs no orientation tag.

use crate::Pixels;

/// Read the orientation from a raw EXIF (TIFF) block; invalid or missing values mean 1.
pub fn exif_orientation(tiff: &[u8]) -> u8 {
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

/// Apply `orientation` to `src`, using `scratch` as the destination buffer when the pixels move;
/// returns the upright picture (which may own `scratch`'s old allocation, `scratch` then gets
/// `src`'s so both stay reusable).
pub fn apply(src: &mut Pixels, orientation: u8, scratch: &mut Vec<u8>) {
    if !(2..=8).contains(&orientation) {
        return;
    }
    let (w, h, c) = (
        src.width as usize,
        src.height as usize,
        src.channels as usize,
    );
    let swap = orientation >= 5;
    let (dw, dh) = if swap { (h, w) } else { (w, h) };
    let len = w * h * c;
    if scratch.len() < len {
        scratch.resize(len, 0);
    } else {
        scratch.truncate(len);
    }
    let s = &src.data[..len];
    let d = &mut scratch[..len];
    // Destination (dx, dy) takes source (sx, sy); the mapping per orientation (EXIF 2.3, 4.6.4).
    let map = |dx: usize, dy: usize| -> (usize, usize) {
        match orientation {
            2 => (w - 1 - dx, dy),
            3 => (w - 1 - dx, h - 1 - dy),
            4 => (dx, h - 1 - dy),
            5 => (dy, dx),
            6 => (dy, h - 1 - dx),
            7 => (w - 1 - dy, h - 1 - dx),
            _ => (w - 1 - dy, dx), // 8
        }
    };
    // Tiles keep both the reads and the writes within cache for the transposing cases.
    const T: usize = 64;
    for ty in (0..dh).step_by(T) {
        for tx in (0..dw).step_by(T) {
            for dy in ty..(ty + T).min(dh) {
                let row = dy * dw;
                for dx in tx..(tx + T).min(dw) {
                    let (sx, sy) = map(dx, dy);
                    let si = (sy * w + sx) * c;
                    let di = (row + dx) * c;
                    d[di..di + c].copy_from_slice(&s[si..si + c]);
                }
            }
        }
    }
    std::mem::swap(&mut src.data, scratch);
    src.width = dw as u32;
    src.height = dh as u32;
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
    fn invalid_values_are_identity() {
        assert_eq!(oriented(0), oriented(1));
        assert_eq!(oriented(9), oriented(1));
    }
}
