//! pixseal's invisible watermark: the 64-bit proof id, error-corrected and checked, spread over a tile
//! of luma chips repeated across the picture; plus the visible mark (`visible`).
//!
//! The design and the measured figures are in docs/watermark.md.

pub mod code;
pub mod grid;
pub mod layout;
pub mod sync;
pub mod visible;

use pixseal_media::Pixels;
use pixseal_proof::ProofId;

use crate::code::CODED_BITS;
use crate::grid::Grid;
use crate::layout::{CHIP, CHIPS, Layout, TILE, TILE_CHIPS};
use crate::sync::Lattice;

/// Shortest picture side the watermark is embedded into (smaller pictures cannot hold it reliably).
pub const MIN_SIDE: u32 = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WatermarkError {
    #[error(
        "picture too small for the watermark: {width}x{height}, the short side must be at least {MIN_SIDE} px"
    )]
    TooSmall { width: u32, height: u32 },
}

impl WatermarkError {
    pub fn code(&self) -> &'static str {
        match self {
            WatermarkError::TooSmall { .. } => "too_small",
        }
    }
}

/// How strongly to embed.
#[derive(Debug, Clone, Copy)]
pub struct Strength {
    /// Root-mean-square luma change in the picture's pixels, in 8-bit levels (2.55 is 40 dB PSNR).
    pub rms: f32,
}

impl Default for Strength {
    /// 40.3 dB: the floor is 40, and dithered rounding adds a little.
    fn default() -> Self {
        Strength { rms: 2.46 }
    }
}

/// What embedding did.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// PSNR of the marked luma against the input luma, in dB.
    pub psnr_luma: f64,
}

/// The outcome of a detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Set only when a decoded payload passed its integrity check.
    pub proof_id: Option<ProofId>,
    /// Strength of the pilot correlation of the best hypothesis (in standard deviations).
    pub sync_score: f32,
}

impl Detection {
    pub fn found(&self) -> bool {
        self.proof_id.is_some()
    }
}

/// Longest side of the region marked and searched, as a multiple of its short side. The working
/// grid has a fixed short side, so its area (and the time and memory of embedding and detection)
/// grows with the aspect ratio: a 64×16 384 strip would be 67 million working pixels. A picture
/// longer than this is marked, and searched, in its central window of this aspect (the tiles
/// repeat, so the window holds the whole payload, as a crop would); every real photo format,
/// 4:3 to 3:1 panoramas, is marked whole.
pub const MAX_ASPECT: u32 = 4;

/// The central window `(x, y, width, height)` of a picture longer than [`MAX_ASPECT`]:1.
fn window(width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
    let (short, long) = (width.min(height), width.max(height));
    let cap = short.saturating_mul(MAX_ASPECT);
    if long <= cap {
        return None;
    }
    let start = (long - cap) / 2;
    Some(if width > height {
        (start, 0, cap, height)
    } else {
        (0, start, width, cap)
    })
}

/// A copy of the `(x, y, w, h)` region.
fn crop(px: &Pixels, (x, y, w, h): (u32, u32, u32, u32)) -> Pixels {
    let ch = px.channels as usize;
    let row = w as usize * ch;
    let mut data = Vec::with_capacity(row * h as usize);
    for yy in y..y + h {
        let start = (yy as usize * px.width as usize + x as usize) * ch;
        data.extend_from_slice(&px.data[start..start + row]);
    }
    Pixels::new(w, h, px.channels, data)
}

/// Write `src` back over the region it was cropped from.
fn paste(px: &mut Pixels, src: &Pixels, (x, y): (u32, u32)) {
    let ch = px.channels as usize;
    let row = src.width as usize * ch;
    for (k, line) in src.data.chunks(row).enumerate() {
        let start = ((y as usize + k) * px.width as usize + x as usize) * ch;
        px.data[start..start + row].copy_from_slice(line);
    }
}

/// Embeds `id` into the picture in place (a picture longer than [`MAX_ASPECT`]:1 in its central
/// window).
pub fn embed(px: &mut Pixels, id: ProofId, strength: Strength) -> Result<Embedded, WatermarkError> {
    if px.width.min(px.height) < MIN_SIDE {
        return Err(WatermarkError::TooSmall {
            width: px.width,
            height: px.height,
        });
    }
    if let Some(win) = window(px.width, px.height) {
        let mut part = crop(px, win);
        let done = embed(&mut part, id, strength)?;
        paste(px, &part, (win.0, win.1));
        return Ok(done);
    }
    let layout = Layout::v1();
    let chips = layout.chips(&code::encode(id.0));
    let luma = Grid::luma_of(px, grid::embed_short(px.width, px.height));
    let delta = pattern(&luma, &chips, strength);
    let gain = calibrate(px, &delta, strength.rms);
    Ok(Embedded {
        psnr_luma: apply(px, &delta, gain),
    })
}

/// The working-grid luma change: the tiled chips, scaled by a texture mask (a busy region hides a
/// larger change than a flat sky), normalised to the requested RMS on the working grid ([`calibrate`]
/// then corrects for what resampling and clipping take away in the picture).
///
/// Informed embedding: the picture itself reads as noise to the detector, and on a busy photo it
/// outvotes a fair share of chips. So the detector is run on the working-grid result, chips it reads
/// weakly or wrongly get more of the energy budget and chips read with a wide margin give some back,
/// for a few rounds — the RMS (and so the PSNR) stays what was asked.
fn pattern(luma: &Grid, chips: &[f32; CHIPS], strength: Strength) -> Grid {
    let mean = luma.box_blur(3);
    let mut sq = luma.clone();
    for (v, m) in sq.v.iter_mut().zip(&mean.v) {
        *v = (*v - m) * (*v - m);
    }
    let dev = sq.box_blur(3);
    let avg = dev.v.iter().map(|v| v.max(0.0).sqrt()).sum::<f32>() / dev.v.len().max(1) as f32;
    // Base shape per working pixel (mask × sign) and the chip each pixel belongs to.
    let mut base = Grid::new(luma.w, luma.h);
    let mut chip_of = vec![0u16; luma.w * luma.h];
    for y in 0..luma.h {
        let cy = (y / CHIP) % TILE_CHIPS;
        for x in 0..luma.w {
            let cx = (x / CHIP) % TILE_CHIPS;
            let i = y * luma.w + x;
            let k = cy * TILE_CHIPS + cx;
            let mask = ((dev.v[i].max(0.0).sqrt() + 2.0) / (avg + 2.0)).clamp(0.5, 2.0);
            // Near black and white there is no headroom: the change would clip.
            let l = luma.v[i];
            let room = (l.min(255.0 - l) / 12.0).clamp(0.2, 1.0);
            base.v[i] = chips[k] * mask * room * SHAPE[y % CHIP] * SHAPE[x % CHIP];
            chip_of[i] = k as u16;
        }
    }
    let mut gain = [1f32; CHIPS];
    let mut d = Grid::new(luma.w, luma.h);
    // The rounds do not improve monotonically (energy moved to one chip is taken from the others),
    // so the round the detector read best is kept.
    let mut best: Option<(f32, Grid)> = None;
    for _ in 0..INFORMED_ROUNDS {
        for ((o, &b), &k) in d.v.iter_mut().zip(&base.v).zip(&chip_of) {
            *o = b * gain[k as usize];
        }
        let rms = (d.v.iter().map(|v| v * v).sum::<f32>() / d.v.len().max(1) as f32).sqrt();
        let g = if rms > 0.0 { strength.rms / rms } else { 0.0 };
        for v in d.v.iter_mut() {
            *v *= g;
        }
        let seen = Grid {
            w: luma.w,
            h: luma.h,
            v: luma
                .v
                .iter()
                .zip(&d.v)
                .map(|(&l, &dv)| (l + dv).clamp(0.0, 255.0))
                .collect(),
        };
        let read = sync::chips_at(&sync::fold(&seen.residual(), Lattice::IDENTITY), 0, 0);
        let scale = read.iter().map(|v| v.abs()).sum::<f32>() / CHIPS as f32;
        if scale <= 0.0 {
            return d;
        }
        let margins: Vec<f32> = (0..CHIPS).map(|k| read[k] * chips[k] / scale).collect();
        // Decoding cares about the weakest chips: score by margins capped at 1.
        let score: f32 = margins.iter().map(|m| m.min(1.0)).sum();
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, d.clone()));
        }
        for (g, &m) in gain.iter_mut().zip(&margins) {
            *g = if m < 0.6 {
                (*g * 2.0).min(8.0)
            } else if m < 1.0 {
                (*g * 1.4).min(8.0)
            } else if m > 1.6 {
                (*g * 0.75).max(0.25)
            } else {
                *g
            };
        }
    }
    best.map(|(_, d)| d).unwrap_or(d)
}

/// Profile of a chip along each axis, matched to the detector's centre weighting (`sync::chips_at`).
const SHAPE: [f32; CHIP] = [0.5, 1.0, 1.0, 0.5];

/// Rounds of informed embedding (each costs one working-grid detection, ~3 ms). 2 measured as good
/// as 3 or better on wm_bench and on 20 small pictures (docs/watermark.md), at two thirds of the cost.
const INFORMED_ROUNDS: usize = 2;

/// The working-grid change bilinearly resampled to the picture's pixels, one row at a time.
struct Resampled<'a> {
    d: &'a Grid,
    xt: Vec<(usize, usize, f32)>,
    yt: Vec<(usize, usize, f32)>,
    line: Vec<f32>,
}

impl<'a> Resampled<'a> {
    fn new(d: &'a Grid, w: usize, h: usize) -> Self {
        let taps = |n: usize, m: usize| -> Vec<(usize, usize, f32)> {
            let s = m as f32 / n as f32;
            (0..n)
                .map(|i| {
                    let u = ((i as f32 + 0.5) * s - 0.5).clamp(0.0, (m - 1) as f32);
                    let i0 = u.floor() as usize;
                    (i0, (i0 + 1).min(m - 1), u - i0 as f32)
                })
                .collect()
        };
        Resampled {
            d,
            xt: taps(w, d.w),
            yt: taps(h, d.h),
            line: vec![0f32; d.w],
        }
    }

    /// Calls `f(x, change)` for every pixel of row `y`.
    fn row(&mut self, y: usize, mut f: impl FnMut(usize, f32)) {
        let (y0, y1, fy) = self.yt[y];
        let w = self.d.w;
        let (r0, r1) = (
            &self.d.v[y0 * w..(y0 + 1) * w],
            &self.d.v[y1 * w..(y1 + 1) * w],
        );
        for ((l, &a), &b) in self.line.iter_mut().zip(r0).zip(r1) {
            *l = a + (b - a) * fy;
        }
        for (x, &(x0, x1, fx)) in self.xt.iter().enumerate() {
            f(x, self.line[x0] + (self.line[x1] - self.line[x0]) * fx);
        }
    }
}

/// Gain that brings the change, as it will land in the picture, to the requested RMS. The working
/// grid's RMS is not what lands: resampling a grid finer than the picture (small pictures) smooths
/// part of it away, and black or white pixels clip. Measured on about 512 pseudo-random rows (all
/// of them on pictures up to 512 rows): a quarter of 480 rows left the PSNR up to 0.3 dB off.
fn calibrate(px: &Pixels, d: &Grid, rms: f32) -> f32 {
    let (w, h, ch) = (px.width as usize, px.height as usize, px.channels as usize);
    let mut rs = Resampled::new(d, w, h);
    let (mut sum, mut n) = (0f64, 0usize);
    let keep = ((512.0 / h as f64).min(1.0) * 1024.0) as u32;
    let sampled = |y: usize| ((y as u32).wrapping_mul(0x9e37_79b9) >> 22) < keep;
    for y in (0..h).filter(|&y| sampled(y)) {
        let row = &px.data[y * w * ch..(y + 1) * w * ch];
        let mut acc = 0f32;
        rs.row(y, |x, dv| {
            let p = &row[x * ch..x * ch + 3];
            let moved = [0, 1, 2].map(|c| (p[c] as f32 + dv).clamp(0.0, 255.0) - p[c] as f32);
            let dl = grid::luma(moved);
            acc += dl * dl;
        });
        sum += acc as f64;
        n += w;
    }
    let landed = (sum / n.max(1) as f64).sqrt() as f32;
    if landed <= 0.0 {
        return 1.0;
    }
    // Bounded: clipping makes the response to more gain sublinear, and a picture that is nearly
    // all black or white should not get a pattern many times stronger where it does not clip.
    (rms / landed).clamp(0.7, 1.6)
}

/// Adds the working-grid change × `gain` to every colour channel, bilinearly resampled; returns
/// luma PSNR.
fn apply(px: &mut Pixels, d: &Grid, gain: f32) -> f64 {
    let (w, h, ch) = (px.width as usize, px.height as usize, px.channels as usize);
    let mut rs = Resampled::new(d, w, h);
    let mut err = 0f64;
    for y in 0..h {
        let row = &mut px.data[y * w * ch..(y + 1) * w * ch];
        let mut dither = (y as u32).wrapping_mul(0x9e37_79b9) | 1;
        let mut row_err = 0f32;
        rs.row(y, |x, dv| {
            let dv = dv * gain;
            let p = &mut row[x * ch..x * ch + 3];
            let mut moved = [0f32; 3];
            for (c, m) in p.iter_mut().zip(moved.iter_mut()) {
                // Dithered rounding: a change of 0.3 levels still moves the mean of a chip by 0.3,
                // where plain rounding would erase it.
                dither ^= dither << 13;
                dither ^= dither >> 17;
                dither ^= dither << 5;
                let u = (dither >> 8) as f32 / (1u32 << 24) as f32;
                // Clamping first makes the cast a floor (no libm call per sample).
                let new = (*c as f32 + dv + u).clamp(0.0, 255.0) as u8;
                *m = new as f32 - *c as f32;
                *c = new;
            }
            let dl = grid::luma(moved);
            row_err += dl * dl;
        });
        // Summed per row in f32, across rows in f64: no per-sample conversion, no drift.
        err += row_err as f64;
    }
    let mse = err / (w * h).max(1) as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// Looks for a watermark. Never fails: a picture too small, unmarked, or not the RGB or RGBA of its
/// declared size is simply not found.
///
/// The mark may sit on either working grid (the embedder picks by the original's size, which a
/// resized copy no longer tells): the grid this picture would be embedded on is tried first, then
/// the other. On each, cheap hypotheses first: the untouched grid (no crop, any resize), then the
/// lattices the autocorrelation proposes, then those refined. At most [`MAX_DECODES`] payloads are
/// decoded, which is what the false-match bound in docs/watermark.md counts.
pub fn detect(px: &Pixels) -> Detection {
    if px.width.min(px.height) < 32 || !follows_contract(px) {
        return Detection::none();
    }
    if let Some(win) = window(px.width, px.height) {
        return detect(&crop(px, win));
    }
    detect_residuals(px.width, px.height, |short| {
        Some(Grid::luma_of(px, short).residual())
    })
}

impl Detection {
    fn none() -> Self {
        Detection {
            proof_id: None,
            sync_score: 0.0,
        }
    }
}

/// The hypotheses of [`detect`] over the residuals of a `width`×`height` picture on each
/// working grid, the grid it would be embedded on first.
fn detect_residuals(
    width: u32,
    height: u32,
    mut residual: impl FnMut(usize) -> Option<Grid>,
) -> Detection {
    let mut best = Detection::none();
    let first = grid::embed_short(width, height);
    let other = if first == grid::FINE_SHORT {
        grid::WORK_SHORT
    } else {
        grid::FINE_SHORT
    };
    let layout = Layout::v1();
    let pilots = sync::Pilots::new(&layout);
    for short in [first, other] {
        if short == grid::FINE_SHORT && width.min(height) < grid::FINE_MIN_SIDE / 4 {
            // Smaller than a 25 % copy of the smallest picture embedded on the fine grid.
            continue;
        }
        let Some(r) = residual(short) else { continue };
        let found = detect_on(&r, &layout, &pilots, &mut best);
        if found.is_some() {
            best.proof_id = found;
            return best;
        }
    }
    best
}

/// Detection over the frames of one video. The watermark is the same in every frame and the
/// picture moves, so the frames' residuals are summed before a single search: the picture's
/// part averages out while the mark's adds up, which is what lets a mark that a lossy
/// re-encode left too faint in any one frame be read (docs/video.md). Holds two working grids
/// whatever the number of frames.
pub struct FrameDetector {
    width: u32,
    height: u32,
    /// Summed residuals on the fine and coarse working grids.
    sums: [Option<Grid>; 2],
    frames: usize,
}

impl FrameDetector {
    /// For frames of `width`×`height`.
    pub fn new(width: u32, height: u32) -> Self {
        FrameDetector {
            width,
            height,
            sums: [None, None],
            frames: 0,
        }
    }

    /// Adds one frame; false (and nothing added) when it is not RGB or RGBA of the size given
    /// to [`FrameDetector::new`], or too small to hold a mark.
    pub fn add(&mut self, px: &Pixels) -> bool {
        if (px.width, px.height) != (self.width, self.height)
            || px.width.min(px.height) < 32
            || !follows_contract(px)
        {
            return false;
        }
        let cropped;
        let px = match window(px.width, px.height) {
            Some(win) => {
                cropped = crop(px, win);
                &cropped
            }
            None => px,
        };
        for (slot, short) in self
            .sums
            .iter_mut()
            .zip([grid::FINE_SHORT, grid::WORK_SHORT])
        {
            if short == grid::FINE_SHORT && px.width.min(px.height) < grid::FINE_MIN_SIDE / 4 {
                continue;
            }
            let r = Grid::luma_of(px, short).residual();
            match slot {
                Some(sum) => {
                    for (a, b) in sum.v.iter_mut().zip(&r.v) {
                        *a += b;
                    }
                }
                None => *slot = Some(r),
            }
        }
        self.frames += 1;
        true
    }

    /// Frames added so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Searches the summed frames as [`detect`] searches one picture (the same hypotheses and
    /// decode bound, so the same false-match rate per video as per picture).
    pub fn detect(&self) -> Detection {
        if self.frames == 0 {
            return Detection::none();
        }
        let (w, h) =
            window(self.width, self.height).map_or((self.width, self.height), |win| (win.2, win.3));
        detect_residuals(w, h, |short| {
            let i = usize::from(short != grid::FINE_SHORT);
            self.sums[i].clone()
        })
    }
}

/// RGB or RGBA with exactly the bytes its size needs. `Pixels` has public fields, so a caller can
/// build one that breaks this, and the luma pass indexes rows by the declared size: a detector
/// that never fails has to refuse such a picture rather than read past its buffer.
fn follows_contract(px: &Pixels) -> bool {
    matches!(px.channels, 3 | 4)
        && (px.width as usize)
            .checked_mul(px.height as usize)
            .and_then(|n| n.checked_mul(px.channels as usize))
            == Some(px.data.len())
}

/// One working grid's hypotheses (at most [`DECODES_PER_GRID`] decodes).
fn detect_on(
    r: &Grid,
    layout: &Layout,
    pilots: &sync::Pilots,
    best: &mut Detection,
) -> Option<ProofId> {
    let mut try_decode = |folded: &[f32], ranked: &[(f32, usize, usize)]| -> Option<ProofId> {
        for &(score, ox, oy) in ranked.iter().take(OFFSETS_TRIED) {
            best.sync_score = best.sync_score.max(score);
            let chips = sync::chips_at(folded, ox, oy);
            if let Some(id) = decode_chips(&chips, layout) {
                return Some(ProofId(id));
            }
        }
        None
    };
    let proposed = sync::lattices(r, LATTICES_TRIED);
    let mut first = vec![Lattice::IDENTITY];
    first.extend(
        proposed
            .iter()
            .copied()
            .filter(|h| (h.period - TILE as f32).abs() > 0.5 || h.angle.abs() > 0.005),
    );
    for &lat in &first {
        let folded = sync::fold(r, lat);
        let ranked = pilots.offsets(&folded, OFFSETS_TRIED);
        if let Some(id) = try_decode(&folded, &ranked) {
            return Some(id);
        }
    }
    for &lat in &first[1..] {
        let (folded, ranked) = refine(r, lat, pilots);
        if let Some(id) = try_decode(&folded, &ranked) {
            return Some(id);
        }
    }
    // The autocorrelation is led astray by strongly structured pictures; a crop or a rescale
    // changes only the period, so sweep it.
    for lat in sweep(r, pilots) {
        let (folded, ranked) = refine(r, lat, pilots);
        if let Some(id) = try_decode(&folded, &ranked) {
            return Some(id);
        }
    }
    None
}

/// Periods proposed by the sweep and then refined and decoded.
const SWEPT: usize = 2;
/// Relative period step of the sweep: the fold of a picture a dozen tiles wide stays aligned to
/// within about a chip.
const SWEEP_STEP: f32 = 0.004;
/// The sweep folds every other row and column: a quarter of the cost, and measured on crops of
/// 0.2 MP pictures the true period still scored highest (7.7 / 5.6 / 7.3 against 7.8 / 6.3 / 7.8
/// with every pixel, noise ≈ 4.4).
const SWEEP_SUBSAMPLE: usize = 2;

/// Scale sweep at angle 0 over periods from 0.98× to 2× the tile (a crop keeping half the short
/// side, or any rescale of such a crop), scored by pilot correlation over the whole picture (a
/// central window was tried first: with only a few tiles in it, the true period of a cropped
/// 0.2 MP picture scored below the noise of 180 hypotheses); the [`SWEPT`] best distinct periods,
/// best first.
fn sweep(r: &Grid, pilots: &sync::Pilots) -> Vec<Lattice> {
    let mut scored: Vec<(f32, f32)> = Vec::new();
    let mut period = 0.98 * TILE as f32;
    while period <= 2.0 * TILE as f32 {
        let folded = sync::fold_every(r, Lattice { period, angle: 0.0 }, SWEEP_SUBSAMPLE);
        let best = pilots.offsets(&folded, 1);
        if let Some(&(score, _, _)) = best.first() {
            scored.push((score, period));
        }
        period *= 1.0 + SWEEP_STEP;
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut picked: Vec<Lattice> = Vec::new();
    for (_, period) in scored {
        if picked
            .iter()
            .all(|l| (l.period / period - 1.0).abs() > 4.0 * SWEEP_STEP)
        {
            picked.push(Lattice { period, angle: 0.0 });
            if picked.len() == SWEPT {
                break;
            }
        }
    }
    picked
}

/// Pilot offsets, best first: (score, ox, oy).
type Ranked = Vec<(f32, usize, usize)>;

/// Lattices proposed by the autocorrelation that are tried.
const LATTICES_TRIED: usize = 4;
/// Best pilot offsets decoded per lattice.
const OFFSETS_TRIED: usize = 2;
/// Upper bound on payload decodes per working grid: (identity + proposed raw and refined + swept)
/// × offsets.
pub const DECODES_PER_GRID: usize = (1 + 2 * LATTICES_TRIED + SWEPT) * OFFSETS_TRIED;
/// Upper bound on payload decodes per picture: two working grids.
pub const MAX_DECODES: usize = 2 * DECODES_PER_GRID;

/// Searches a small neighbourhood of a lattice hypothesis for the strongest pilot correlation: the
/// autocorrelation gives period and angle to about a pixel, and the fold needs better over many tiles.
fn refine(r: &Grid, lat: Lattice, pilots: &sync::Pilots) -> (Vec<f32>, Ranked) {
    // First a coarse look, subsampled, ±3 % in period: on a strongly structured picture (a rotated
    // portrait) the autocorrelation put the period 3 % off.
    let mut center = lat;
    let mut coarse_best = f32::MIN;
    for i in -3..=3 {
        for j in -1..=1 {
            let cand = Lattice {
                period: lat.period * (1.0 + 0.01 * i as f32),
                angle: lat.angle + 0.004 * j as f32,
            };
            let folded = sync::fold_every(r, cand, SWEEP_SUBSAMPLE);
            let score = pilots.offsets(&folded, 1)[0].0;
            if score > coarse_best {
                coarse_best = score;
                center = cand;
            }
        }
    }
    let mut best: Option<(Lattice, Vec<f32>, Ranked)> = None;
    for (dp, da) in [(0.006f32, 0.004f32), (0.002, 0.0013)] {
        for i in -1..=1 {
            for j in -1..=1 {
                let cand = Lattice {
                    period: center.period * (1.0 + dp * i as f32),
                    angle: center.angle + da * j as f32,
                };
                let folded = sync::fold(r, cand);
                let ranked = pilots.offsets(&folded, OFFSETS_TRIED);
                if best.as_ref().is_none_or(|(_, _, rk)| ranked[0].0 > rk[0].0) {
                    best = Some((cand, folded, ranked));
                }
            }
        }
        center = best.as_ref().expect("nine candidates").0;
    }
    let (_, folded, ranked) = best.expect("nine candidates");
    (folded, ranked)
}

fn decode_chips(chips: &[f32; CHIPS], layout: &Layout) -> Option<u64> {
    let mut soft = [0f32; CODED_BITS];
    for ((&c, role), sign) in chips.iter().zip(&layout.role).zip(&layout.sign) {
        if let Some(i) = role {
            soft[*i as usize] = c * sign;
        }
    }
    let sd = (soft.iter().map(|s| s * s).sum::<f32>() / CODED_BITS as f32).sqrt();
    if sd <= 0.0 {
        return None;
    }
    for s in soft.iter_mut() {
        *s /= sd;
    }
    code::decode(&soft)
}
