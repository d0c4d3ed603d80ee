//! The working grid: the picture's luma resampled so its short side is [`WORK_SHORT`] (or, on large
//! pictures, [`FINE_SHORT`]) pixels, and the filters that turn it into a watermark residual.
//!
//! Working at a size fixed relative to the picture (not in source pixels) is what makes a downscaled
//! copy land on the same grid as the original.

use pixseal_media::Pixels;

/// Short side of the working grid, in working pixels.
pub const WORK_SHORT: usize = 256;
/// Short side of the fine working grid, used on pictures whose short side is at least
/// [`FINE_MIN_SIDE`]: four times the tiles of the coarse grid, on finer texture, so less of the
/// picture leaks into each chip. Measured with wm_bench (docs/watermark.md), choosing the fine grid
/// from a short side of 1024 → 512 → 384 → 256 raised every attack's recovery at each step, even
/// where the grid is finer than the picture.
pub const FINE_SHORT: usize = 512;
/// Smallest short side embedded on the fine grid; smaller pictures use the coarse one.
pub const FINE_MIN_SIDE: u32 = 256;

/// The working grid's short side a picture of `w`×`h` is embedded on.
pub fn embed_short(w: u32, h: u32) -> usize {
    if w.min(h) >= FINE_MIN_SIDE {
        FINE_SHORT
    } else {
        WORK_SHORT
    }
}

/// BT.601 luma of an R, G, B triple (or of a change to one): the one weighting the watermark uses.
pub fn luma(rgb: [f32; 3]) -> f32 {
    0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
}

/// A row-major f32 plane.
#[derive(Debug, Clone)]
pub struct Grid {
    pub w: usize,
    pub h: usize,
    pub v: Vec<f32>,
}

impl Grid {
    pub fn new(w: usize, h: usize) -> Self {
        Grid {
            w,
            h,
            v: vec![0.0; w * h],
        }
    }

    /// Working size for a picture of `w`×`h` on a grid whose short side is `grid_short`.
    pub fn working_size(w: u32, h: u32, grid_short: usize) -> (usize, usize) {
        let short = w.min(h) as f64;
        let s = grid_short as f64 / short;
        (
            ((w as f64 * s).round() as usize).max(1),
            ((h as f64 * s).round() as usize).max(1),
        )
    }

    /// The picture's luma (BT.601 weights) averaged over each working pixel's footprint.
    pub fn luma_of(px: &Pixels, grid_short: usize) -> Grid {
        let (ww, wh) = Self::working_size(px.width, px.height, grid_short);
        let (sw, sh) = (px.width as usize, px.height as usize);
        let ch = px.channels as usize;
        let cols = footprints(sw, ww);
        let rows = footprints(sh, wh);
        // Horizontal pass per source row, then vertical accumulation into working rows.
        let mut out = Grid::new(ww, wh);
        let mut hrow = vec![0f32; ww];
        let mut row_luma = vec![0f32; sw];
        // For each source row, the working rows it contributes to (at most two when downscaling).
        let mut contrib: Vec<Vec<(usize, f32)>> = vec![Vec::new(); sh];
        for (wy, f) in rows.iter().enumerate() {
            for &(sy, wgt) in &f.taps {
                contrib[sy].push((wy, wgt));
            }
        }
        for (sy, c) in contrib.iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            let line = &px.data[sy * sw * ch..(sy + 1) * sw * ch];
            for (x, l) in row_luma.iter_mut().enumerate() {
                let p = &line[x * ch..x * ch + 3];
                *l = luma([p[0] as f32, p[1] as f32, p[2] as f32]);
            }
            for (wx, f) in cols.iter().enumerate() {
                hrow[wx] = f.taps.iter().map(|&(sx, wgt)| row_luma[sx] * wgt).sum();
            }
            for &(wy, wgt) in c {
                let dst = &mut out.v[wy * ww..(wy + 1) * ww];
                for (d, &hv) in dst.iter_mut().zip(&hrow) {
                    *d += hv * wgt;
                }
            }
        }
        out
    }

    /// Mean over a (2r+1)² box, edges clamped (separable running sums).
    pub fn box_blur(&self, r: usize) -> Grid {
        let tmp = blur_rows(self, r);
        blur_cols(&tmp, r)
    }

    /// High-passed, contrast-normalised luma: what is left once the picture itself is predicted away.
    /// Dividing by the local deviation weights calm regions (where the mark is clean) above busy ones.
    pub fn residual(self) -> Grid {
        let mean = self.box_blur(4);
        let mut r = self;
        for (a, m) in r.v.iter_mut().zip(&mean.v) {
            *a -= m;
        }
        let sq = Grid {
            w: r.w,
            h: r.h,
            v: r.v.iter().map(|a| a * a).collect(),
        };
        let var = sq.box_blur(6);
        for (a, s) in r.v.iter_mut().zip(&var.v) {
            *a = (*a / (s.max(0.0).sqrt() + 1.5)).clamp(-3.0, 3.0);
        }
        let mu = r.v.iter().sum::<f32>() / r.v.len().max(1) as f32;
        for a in r.v.iter_mut() {
            *a -= mu;
        }
        r
    }
}

/// Which source samples (and with which weights) make one working sample, by area coverage.
#[derive(Clone, Debug)]
struct Footprint {
    taps: Vec<(usize, f32)>,
}

fn footprints(src: usize, dst: usize) -> Vec<Footprint> {
    let scale = src as f64 / dst as f64; // source pixels per working pixel
    (0..dst)
        .map(|i| {
            let (a, b) = (i as f64 * scale, (i as f64 + 1.0) * scale);
            let mut taps = Vec::new();
            let mut s = a.floor() as usize;
            while (s as f64) < b && s < src {
                let lo = a.max(s as f64);
                let hi = b.min(s as f64 + 1.0);
                if hi > lo {
                    taps.push((s, ((hi - lo) / scale) as f32));
                }
                s += 1;
            }
            Footprint { taps }
        })
        .collect()
}

fn blur_rows(g: &Grid, r: usize) -> Grid {
    // Filled by push, not zeroed first: the blurs are a fair share of embedding time.
    let mut v = Vec::with_capacity(g.w * g.h);
    let n = 2 * r + 1;
    for y in 0..g.h {
        let row = &g.v[y * g.w..(y + 1) * g.w];
        let at = |i: isize| row[i.clamp(0, g.w as isize - 1) as usize] as f64;
        // f64 running sum: in f32 the drift can push a variance below zero.
        let mut acc: f64 = (-(r as isize)..=r as isize).map(at).sum();
        for x in 0..g.w {
            v.push((acc / n as f64) as f32);
            acc += at(x as isize + r as isize + 1) - at(x as isize - r as isize);
        }
    }
    Grid { w: g.w, h: g.h, v }
}

/// Vertical box mean, edges clamped: running sums per column, so the passes run along rows (no
/// transpose, which cost more than the blur itself).
fn blur_cols(g: &Grid, r: usize) -> Grid {
    let (w, h) = (g.w, g.h);
    if w == 0 || h == 0 {
        return Grid::new(w, h);
    }
    let mut v = Vec::with_capacity(w * h);
    let row = |i: isize| &g.v[i.clamp(0, h as isize - 1) as usize * w..][..w];
    let inv = 1.0 / (2 * r + 1) as f64;
    // f64 running sums, as in blur_rows.
    let mut acc = vec![0f64; w];
    for i in -(r as isize)..=r as isize {
        for (a, &x) in acc.iter_mut().zip(row(i)) {
            *a += x as f64;
        }
    }
    for y in 0..h {
        v.extend(acc.iter().map(|&a| (a * inv) as f32));
        let (add, sub) = (
            row(y as isize + r as isize + 1),
            row(y as isize - r as isize),
        );
        for ((a, &p), &m) in acc.iter_mut().zip(add).zip(sub) {
            *a += p as f64 - m as f64;
        }
    }
    Grid { w, h, v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_size_follows_the_short_side() {
        assert_eq!(Grid::working_size(4000, 3000, WORK_SHORT), (341, 256));
        assert_eq!(Grid::working_size(600, 1200, WORK_SHORT), (256, 512));
        assert_eq!(Grid::working_size(128, 100, WORK_SHORT), (328, 256));
        assert_eq!(Grid::working_size(4000, 3000, FINE_SHORT), (683, 512));
        assert_eq!(embed_short(4000, 3000), FINE_SHORT);
        assert_eq!(embed_short(1000, 3000), FINE_SHORT);
        assert_eq!(embed_short(200, 3000), WORK_SHORT);
    }

    #[test]
    fn area_resampling_preserves_a_flat_grey() {
        let px = Pixels::new(1000, 700, 3, vec![77; 1000 * 700 * 3]);
        let g = Grid::luma_of(&px, WORK_SHORT);
        assert!(
            g.v.iter().all(|&v| (v - 77.0).abs() < 0.01),
            "{:?}",
            &g.v[..4]
        );
    }

    #[test]
    fn box_blur_is_the_clamped_box_mean() {
        let mut g = Grid::new(23, 17);
        for (i, v) in g.v.iter_mut().enumerate() {
            *v = ((i * 7919) % 101) as f32;
        }
        let r = 3;
        let b = g.box_blur(r);
        for y in 0..g.h {
            for x in 0..g.w {
                let mut sum = 0.0;
                for dy in -(r as isize)..=r as isize {
                    for dx in -(r as isize)..=r as isize {
                        let yy = (y as isize + dy).clamp(0, g.h as isize - 1) as usize;
                        let xx = (x as isize + dx).clamp(0, g.w as isize - 1) as usize;
                        sum += g.v[yy * g.w + xx];
                    }
                }
                let want = sum / ((2 * r + 1) * (2 * r + 1)) as f32;
                assert!((b.v[y * g.w + x] - want).abs() < 1e-3, "({x},{y})");
            }
        }
    }

    #[test]
    fn blurred_squares_stay_non_negative() {
        // Large values next to zeros are what made a running f32 sum go negative.
        let mut g = Grid::new(500, 40);
        for (i, v) in g.v.iter_mut().enumerate() {
            *v = if (i / 7) % 3 == 0 { 65025.0 } else { 0.0 };
        }
        assert!(g.box_blur(6).v.iter().all(|&v| v >= 0.0));
    }

    #[test]
    fn residual_of_a_flat_picture_is_zero() {
        let px = Pixels::new(300, 300, 3, vec![200; 300 * 300 * 3]);
        let r = Grid::luma_of(&px, WORK_SHORT).residual();
        assert!(r.v.iter().all(|v| v.abs() < 1e-3));
    }
}
