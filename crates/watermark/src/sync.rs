//! Synchronisation: recover the tile lattice (period and angle) from the residual's autocorrelation,
//! fold the residual onto one tile, and find the tile's offset from the pilot chips.
//!
//! A repeated tile makes the autocorrelation peak at every lattice vector, whatever the picture shows;
//! those peaks give scale and rotation after a crop, a resize or a small turn without any search over
//! them, and the pilots then fix the remaining shift.

use std::f32::consts::PI;
use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::grid::Grid;
use crate::layout::{CHIP, CHIPS, Layout, TILE, TILE_CHIPS};

/// Shortest and longest lattice period searched (working pixels): scale 0.7× to 2×.
const MIN_PERIOD: f32 = 0.7 * TILE as f32;
const MAX_PERIOD: f32 = 2.0 * TILE as f32;

/// A lattice hypothesis: tile period in working pixels and angle of the first lattice vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lattice {
    pub period: f32,
    pub angle: f32,
}

impl Lattice {
    pub const IDENTITY: Lattice = Lattice {
        period: TILE as f32,
        angle: 0.0,
    };
}

struct Fft2 {
    w: usize,
    h: usize,
    row_f: Arc<dyn Fft<f32>>,
    row_i: Arc<dyn Fft<f32>>,
    col_f: Arc<dyn Fft<f32>>,
    col_i: Arc<dyn Fft<f32>>,
}

impl Fft2 {
    fn new(w: usize, h: usize) -> Self {
        let mut p = FftPlanner::new();
        Fft2 {
            w,
            h,
            row_f: p.plan_fft_forward(w),
            row_i: p.plan_fft_inverse(w),
            col_f: p.plan_fft_forward(h),
            col_i: p.plan_fft_inverse(h),
        }
    }

    fn run(&self, buf: &mut [Complex32], inverse: bool) {
        let (rows, cols) = if inverse {
            (&self.row_i, &self.col_i)
        } else {
            (&self.row_f, &self.col_f)
        };
        rows.process(buf);
        let mut t = vec![Complex32::default(); self.w * self.h];
        for y in 0..self.h {
            for x in 0..self.w {
                t[x * self.h + y] = buf[y * self.w + x];
            }
        }
        cols.process(&mut t);
        for y in 0..self.h {
            for x in 0..self.w {
                buf[y * self.w + x] = t[x * self.h + y];
            }
        }
    }
}

/// Smallest n ≥ min whose only prime factors are 2, 3 and 5 (fast FFT sizes).
fn fast_len(min: usize) -> usize {
    (min..)
        .find(|&n| {
            let mut m = n;
            for p in [2, 3, 5] {
                while m % p == 0 {
                    m /= p;
                }
            }
            m == 1
        })
        .expect("unbounded search")
}

/// Lattice hypotheses from the autocorrelation, strongest first (at most `max`).
pub fn lattices(r: &Grid, max: usize) -> Vec<Lattice> {
    let lag = MAX_PERIOD.ceil() as usize + 3;
    if r.w <= lag / 2 || r.h <= lag / 2 {
        return Vec::new();
    }
    let (pw, ph) = (fast_len(r.w + lag), fast_len(r.h + lag));
    let fft = Fft2::new(pw, ph);
    let mut buf = vec![Complex32::default(); pw * ph];
    for y in 0..r.h {
        for x in 0..r.w {
            buf[y * pw + x] = Complex32::new(r.v[y * r.w + x], 0.0);
        }
    }
    fft.run(&mut buf, false);
    // Whiten the power spectrum: a tile repeated over the picture puts sharp lines in it, while the
    // picture's own texture is broad; dividing by the local mean keeps the lines and flattens the rest.
    let mut power = Grid::new(pw, ph);
    for (p, c) in power.v.iter_mut().zip(&buf) {
        *p = c.norm_sqr();
    }
    let local = power.box_blur(6);
    for ((c, &p), &m) in buf.iter_mut().zip(&power.v).zip(&local.v) {
        *c = Complex32::new(p / (m + 1e-9), 0.0);
    }
    fft.run(&mut buf, true);
    // Normalised autocorrelation over lags dy in 0..=lag, dx in -lag..=lag.
    let side = 2 * lag + 1;
    let mut a = vec![0f32; side * (lag + 1)];
    for dy in 0..=lag {
        for dxi in 0..side {
            let dx = dxi as isize - lag as isize;
            let ox = r.w as isize - dx.abs();
            let oy = r.h as isize - dy as isize;
            if ox <= 0 || oy <= 0 {
                continue;
            }
            let ix = dx.rem_euclid(pw as isize) as usize;
            a[dy * side + dxi] = buf[dy * pw + ix].re / (ox * oy) as f32;
        }
    }
    let at = |dx: isize, dy: isize| -> f32 {
        // The autocorrelation is point-symmetric: reflect lags with dy < 0.
        let (dx, dy) = if dy < 0 { (-dx, -dy) } else { (dx, dy) };
        if dy as usize > lag || dx.unsigned_abs() > lag {
            return 0.0;
        }
        a[dy as usize * side + (dx + lag as isize) as usize]
    };
    // How far a lag stands above its surroundings (the picture's own correlation is smooth).
    let peak = |dx: isize, dy: isize| -> f32 {
        let mut ring = 0.0;
        let mut n = 0.0;
        for j in -3..=3isize {
            for i in -3..=3isize {
                if i.abs() <= 1 && j.abs() <= 1 {
                    continue;
                }
                ring += at(dx + i, dy + j);
                n += 1.0;
            }
        }
        at(dx, dy) - ring / n
    };
    let mut found: Vec<(f32, f32, f32)> = Vec::new(); // (score, px, py)
    let l = lag as isize;
    for dy in 0..=l - 3 {
        for dx in -(l - 3)..=(l - 3) {
            let rad = ((dx * dx + dy * dy) as f32).sqrt();
            if !(MIN_PERIOD..=MAX_PERIOD).contains(&rad) || (dy == 0 && dx < 0) {
                continue;
            }
            let v = at(dx, dy);
            let is_max = (-1..=1isize)
                .all(|j| (-1..=1isize).all(|i| (i == 0 && j == 0) || at(dx + i, dy + j) <= v));
            if !is_max {
                continue;
            }
            let s = peak(dx, dy);
            if s <= 0.0 {
                continue;
            }
            // Sub-pixel position by a parabola through the neighbours.
            let sub = |m: f32, c: f32, p: f32| {
                let d = m - 2.0 * c + p;
                if d.abs() < 1e-12 {
                    0.0
                } else {
                    (0.5 * (m - p) / d).clamp(-0.5, 0.5)
                }
            };
            let fx = dx as f32 + sub(at(dx - 1, dy), v, at(dx + 1, dy));
            let fy = dy as f32 + sub(at(dx, dy - 1), v, at(dx, dy + 1));
            found.push((s, fx, fy));
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    found.truncate(12);
    // A square lattice also peaks 90° away at the same distance: score each candidate with its twin.
    let mut hyps: Vec<(f32, Lattice)> = Vec::new();
    for &(s, fx, fy) in &found {
        let twin = peak(-fy.round() as isize, fx.round() as isize).max(0.0);
        let mut angle = fy.atan2(fx);
        while angle >= PI / 4.0 {
            angle -= PI / 2.0;
        }
        while angle < -PI / 4.0 {
            angle += PI / 2.0;
        }
        let lat = Lattice {
            period: (fx * fx + fy * fy).sqrt(),
            angle,
        };
        let dup = hyps.iter().any(|(_, h)| {
            (h.period - lat.period).abs() < 1.5 && (h.angle - lat.angle).abs() < 0.02
        });
        if !dup {
            hyps.push((s + twin, lat));
        }
    }
    hyps.sort_by(|a, b| b.0.total_cmp(&a.0));
    hyps.into_iter().take(max).map(|(_, l)| l).collect()
}

/// The residual folded onto one tile at sub-chip resolution: mean residual per tile position.
pub fn fold(r: &Grid, lat: Lattice) -> Vec<f32> {
    fold_every(r, lat, 1)
}

/// [`fold`] over every `step`-th row and column only: a quarter of the cost at step 2, for
/// searches that score many hypotheses (a tile holds enough samples that the pilots still stand out).
pub fn fold_every(r: &Grid, lat: Lattice, step: usize) -> Vec<f32> {
    let step = step.max(1);
    const MASK: i32 = TILE as i32 - 1; // TILE is a power of two
    let k = TILE as f32 / lat.period;
    let (c, s) = (lat.angle.cos() * k, lat.angle.sin() * k);
    let mut sum = vec![0f32; TILE * TILE];
    let mut n = vec![0u32; TILE * TILE];
    for y in (0..r.h).step_by(step) {
        let (yf, row) = (y as f32 + 0.5, &r.v[y * r.w..(y + 1) * r.w]);
        // Walk the row in 32.32 fixed point: exact increments, and an arithmetic shift floors
        // negative coordinates without a libm call per pixel.
        let fx = |f: f32| (f as f64 * 4_294_967_296.0) as i64;
        let (mut u, mut v) = (fx(0.5 * c + yf * s), fx(yf * c - 0.5 * s));
        let (du, dv) = (fx(c * step as f32), fx(-s * step as f32));
        for &val in row.iter().step_by(step) {
            let i =
                (((v >> 32) as i32 & MASK) as usize) * TILE + ((u >> 32) as i32 & MASK) as usize;
            sum[i] += val;
            n[i] += 1;
            u += du;
            v += dv;
        }
    }
    for (s, &c) in sum.iter_mut().zip(&n) {
        if c > 0 {
            *s /= c as f32;
        }
    }
    sum
}

/// Reads one tile out of a fold at a given offset: chip sums, centre-weighted against misalignment.
pub fn chips_at(folded: &[f32], ox: usize, oy: usize) -> [f32; CHIPS] {
    const W: [f32; CHIP] = [0.5, 1.0, 1.0, 0.5];
    let mut out = [0f32; CHIPS];
    for cy in 0..TILE_CHIPS {
        for cx in 0..TILE_CHIPS {
            let mut acc = 0.0;
            for (j, wj) in W.iter().enumerate() {
                for (i, wi) in W.iter().enumerate() {
                    let u = (cx * CHIP + i + ox) % TILE;
                    let v = (cy * CHIP + j + oy) % TILE;
                    acc += folded[v * TILE + u] * wi * wj;
                }
            }
            out[cy * TILE_CHIPS + cx] = acc;
        }
    }
    out
}

/// Ranks tile offsets by correlation with the pilot chips; plans and the pilot spectrum are made once.
pub struct Pilots {
    fft: Fft2,
    spectrum: Vec<Complex32>,
}

impl Pilots {
    pub fn new(layout: &Layout) -> Self {
        let fft = Fft2::new(TILE, TILE);
        let mut q = vec![Complex32::default(); TILE * TILE];
        for k in 0..CHIPS {
            if layout.role[k].is_some() {
                continue;
            }
            let (cx, cy) = (k % TILE_CHIPS, k / TILE_CHIPS);
            for j in 0..CHIP {
                for i in 0..CHIP {
                    q[(cy * CHIP + j) * TILE + cx * CHIP + i] = Complex32::new(layout.sign[k], 0.0);
                }
            }
        }
        fft.run(&mut q, false);
        Pilots { fft, spectrum: q }
    }

    /// Tile offsets ranked by pilot correlation: (score in standard deviations, ox, oy), best first.
    pub fn offsets(&self, folded: &[f32], max: usize) -> Vec<(f32, usize, usize)> {
        let mut f: Vec<Complex32> = folded.iter().map(|&v| Complex32::new(v, 0.0)).collect();
        self.fft.run(&mut f, false);
        for (a, b) in f.iter_mut().zip(&self.spectrum) {
            *a *= b.conj();
        }
        self.fft.run(&mut f, true);
        let n = f.len() as f32;
        let mean = f.iter().map(|c| c.re).sum::<f32>() / n;
        let sd = (f.iter().map(|c| (c.re - mean).powi(2)).sum::<f32>() / n)
            .sqrt()
            .max(1e-12);
        let mut ranked: Vec<(f32, usize, usize)> = Vec::with_capacity(max + 1);
        for (i, c) in f.iter().enumerate() {
            let z = (c.re - mean) / sd;
            if ranked.len() < max || z > ranked[ranked.len() - 1].0 {
                ranked.push((z, i % TILE, i / TILE));
                ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
                ranked.truncate(max);
            }
        }
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_lengths() {
        assert_eq!(fast_len(385), 400);
        assert_eq!(fast_len(256), 256);
        assert_eq!(fast_len(7), 8);
    }
}
