//! The decoded picture handed between stages: 8-bit RGB or RGBA, rows packed.

/// An 8-bit sRGB picture, `channels` = 3 (RGB) or 4 (RGBA, straight alpha), rows packed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn new(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Self {
        debug_assert_eq!(
            data.len(),
            width as usize * height as usize * channels as usize
        );
        Pixels {
            width,
            height,
            channels,
            data,
        }
    }

    pub fn megapixels(&self) -> f64 {
        self.width as f64 * self.height as f64 / 1e6
    }

    pub fn has_alpha(&self) -> bool {
        self.channels == 4
    }

    /// True when every alpha sample is 255, so the alpha channel carries nothing.
    pub fn is_opaque(&self) -> bool {
        !self.has_alpha() || self.data.chunks_exact(4).all(|p| p[3] == 255)
    }

    /// Composite over white and drop alpha (for encoders without alpha, such as JPEG).
    pub fn flatten_to_rgb(&mut self) {
        if self.channels != 4 {
            return;
        }
        let n = self.width as usize * self.height as usize;
        for i in 0..n {
            let (r, g, b, a) = (
                self.data[4 * i] as u32,
                self.data[4 * i + 1] as u32,
                self.data[4 * i + 2] as u32,
                self.data[4 * i + 3] as u32,
            );
            let over = |c: u32| ((c * a + 255 * (255 - a) + 127) / 255) as u8;
            self.data[3 * i] = over(r);
            self.data[3 * i + 1] = over(g);
            self.data[3 * i + 2] = over(b);
        }
        self.data.truncate(3 * n);
        self.channels = 3;
    }

    /// Drop an alpha channel that is fully opaque.
    pub fn drop_opaque_alpha(&mut self) {
        if self.has_alpha() && self.is_opaque() {
            self.flatten_to_rgb();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_composites_over_white() {
        let mut p = Pixels::new(2, 1, 4, vec![0, 0, 0, 0, 10, 20, 30, 255]);
        p.flatten_to_rgb();
        assert_eq!(p.channels, 3);
        assert_eq!(p.data, vec![255, 255, 255, 10, 20, 30]);
    }
}
