//! Optional downscale so the long edge fits `max_edge` (fast_image_resize, Lanczos3).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::{IngestError, Pixels};

/// The size that fits `max_edge` on the long side, keeping the aspect ratio (never upscales).
pub fn fitted(width: u32, height: u32, max_edge: u32) -> (u32, u32) {
    let long = width.max(height);
    if max_edge == 0 || long <= max_edge {
        return (width, height);
    }
    let scale = max_edge as f64 / long as f64;
    let w = ((width as f64 * scale).round() as u32).clamp(1, max_edge);
    let h = ((height as f64 * scale).round() as u32).clamp(1, max_edge);
    (w, h)
}

/// Downscale `px` in place (through `scratch`) so its long edge is at most `max_edge`.
pub fn fit(
    resizer: &mut Resizer,
    px: &mut Pixels,
    max_edge: u32,
    scratch: &mut Vec<u8>,
) -> Result<(), IngestError> {
    let (w, h) = fitted(px.width, px.height, max_edge);
    if (w, h) == (px.width, px.height) {
        return Ok(());
    }
    let pt = if px.channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let src = ImageRef::new(px.width, px.height, &px.data, pt)
        .map_err(|e| IngestError::Internal(e.to_string()))?;
    let len = w as usize * h as usize * px.channels as usize;
    scratch.clear();
    scratch.resize(len, 0);
    let mut dst = Image::from_slice_u8(w, h, scratch, pt)
        .map_err(|e| IngestError::Internal(e.to_string()))?;
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(&src, &mut dst, &opts)
        .map_err(|e| IngestError::Internal(e.to_string()))?;
    std::mem::swap(&mut px.data, scratch);
    px.width = w;
    px.height = h;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_keeps_aspect_and_never_upscales() {
        assert_eq!(fitted(4000, 3000, 2000), (2000, 1500));
        assert_eq!(fitted(3000, 4000, 2000), (1500, 2000));
        assert_eq!(fitted(100, 50, 2000), (100, 50));
        assert_eq!(fitted(10000, 1, 100), (100, 1));
    }

    #[test]
    fn fit_resizes_pixels() {
        let mut px = Pixels::new(8, 4, 3, vec![200; 8 * 4 * 3]);
        fit(&mut Resizer::new(), &mut px, 4, &mut Vec::new()).unwrap();
        assert_eq!((px.width, px.height, px.data.len()), (4, 2, 24));
        assert!(px.data.iter().all(|&v| v == 200));
    }
}
