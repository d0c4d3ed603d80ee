//! The visible mark: label, short proof id and date, drawn where the picture is calm, in the colour
//! that stands out most against what lies under it, with a soft halo, alpha-blended.
//!
//! Placement looks at local luma variance (a flat sky or wall hides less of the picture and keeps
//! the text readable); colour looks at the background's relative luminance (WCAG definition) and
//! the alpha is raised until the measured contrast ratio reaches [`TARGET_CONTRAST`].

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use pixseal_media::Pixels;
use pixseal_proof::ProofId;

/// Contrast ratio the text aims for against the background under it (WCAG AA for normal text).
pub const TARGET_CONTRAST: f64 = 4.5;
/// Contrast ratio the mark never goes under (WCAG AA for large text, the floor).
pub const MIN_CONTRAST: f64 = 3.0;
/// Text smaller than this (in pixels) is not legible: the mark is skipped.
pub const MIN_TEXT_PX: f32 = 9.0;
/// Longest label kept, in characters.
pub const MAX_LABEL_CHARS: usize = 48;

/// What to write.
#[derive(Debug, Clone)]
pub struct Mark<'a> {
    /// Defaults to "pixseal".
    pub label: Option<&'a str>,
    pub proof_id: ProofId,
    /// `YYYY-MM-DD` (UTC).
    pub date: &'a str,
}

impl Mark<'_> {
    /// The line of text drawn: `label · px_XXXXXXXX · date`.
    pub fn text(&self) -> String {
        let label = self.label.map(clean_label).filter(|l| !l.is_empty());
        let id = self.proof_id.to_string();
        let short = &id[..id.len().min(11)];
        format!(
            "{} · {short} · {}",
            label.as_deref().unwrap_or("pixseal"),
            self.date
        )
    }
}

/// Control characters out, runs of whitespace folded, length capped.
fn clean_label(s: &str) -> String {
    let visible: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = visible.split_whitespace().collect();
    words.join(" ").chars().take(MAX_LABEL_CHARS).collect()
}

/// Where and how the mark was drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    pub text: String,
    /// Box of the mark (text plus halo), in pixels.
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// Font size in pixels.
    pub text_px: f32,
    /// True for light text on a darker background.
    pub light: bool,
    pub alpha: f32,
    /// Standard deviation of luma (0–255) under the box before drawing: how calm the place was.
    pub background_sd: f64,
    /// Measured contrast ratio of the drawn text against the background it was drawn on.
    pub contrast: f64,
}

/// The embedded font: DejaVu Sans Bold (Bitstream Vera licence, free to embed and redistribute).
fn font() -> FontRef<'static> {
    FontRef::try_from_slice(dejavu::sans::bold()).expect("the embedded font parses")
}

/// Coverage of the rendered text, with room for the halo around it.
struct Coverage {
    w: usize,
    h: usize,
    text: Vec<f32>,
    halo: Vec<f32>,
}

fn render(text: &str, px: f32) -> Coverage {
    let font = font();
    let scale = PxScale::from(px);
    let sf = font.as_scaled(scale);
    let pad = (px / 10.0).ceil().max(1.0);
    let mut caret = pad;
    let mut prev = None;
    let mut glyphs = Vec::new();
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(scale, point(caret, pad + sf.ascent())));
        caret += sf.h_advance(id);
        prev = Some(id);
    }
    let w = (caret + pad).ceil() as usize;
    let h = (sf.ascent() - sf.descent() + 2.0 * pad).ceil() as usize;
    let mut text_cov = vec![0f32; w * h];
    for g in glyphs {
        if let Some(og) = font.outline_glyph(g) {
            let b = og.px_bounds();
            og.draw(|gx, gy, c| {
                let x = b.min.x as i64 + gx as i64;
                let y = b.min.y as i64 + gy as i64;
                if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                    let v = &mut text_cov[y as usize * w + x as usize];
                    *v = (*v + c).min(1.0);
                }
            });
        }
    }
    let halo = dilate(&text_cov, w, h, pad as usize);
    Coverage {
        w,
        h,
        text: text_cov,
        halo,
    }
}

/// Separable max filter of radius `r`: the halo's shape.
fn dilate(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (a, b) = (x.saturating_sub(r), (x + r).min(w - 1));
            tmp[y * w + x] = v[y * w + a..=y * w + b].iter().fold(0f32, |m, &c| m.max(c));
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let (a, b) = (y.saturating_sub(r), (y + r).min(h - 1));
        for x in 0..w {
            out[y * w + x] = (a..=b).fold(0f32, |m, yy| m.max(tmp[yy * w + x]));
        }
    }
    out
}

/// sRGB 8-bit → linear light.
fn linear(c: u8) -> f64 {
    let c = c as f64 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// WCAG relative luminance of one pixel.
fn luminance(lut: &[f64; 256], p: &[u8]) -> f64 {
    0.2126 * lut[p[0] as usize] + 0.7152 * lut[p[1] as usize] + 0.0722 * lut[p[2] as usize]
}

/// WCAG contrast ratio of two relative luminances.
pub fn contrast_ratio(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    (hi + 0.05) / (lo + 0.05)
}

/// Per-block luma sums on a coarse grid, so the variance of any block-aligned box is two lookups
/// in integral images — cheap even on a 24 MP photo.
struct Calm {
    block: usize,
    bw: usize,
    bh: usize,
    /// Integral images (bw+1)×(bh+1) of Σluma and Σluma².
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl Calm {
    fn of(px: &Pixels, block: usize) -> Calm {
        let (w, h, ch) = (px.width as usize, px.height as usize, px.channels as usize);
        let (bw, bh) = (w / block, h / block);
        let mut b1 = vec![0f64; bw * bh];
        let mut b2 = vec![0f64; bw * bh];
        for y in 0..bh * block {
            let row = &px.data[y * w * ch..(y + 1) * w * ch];
            let by = y / block;
            for bx in 0..bw {
                let (mut a1, mut a2) = (0u64, 0u64);
                for p in row[bx * block * ch..(bx + 1) * block * ch].chunks_exact(ch) {
                    let l = (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8;
                    a1 += l as u64;
                    a2 += (l * l) as u64;
                }
                b1[by * bw + bx] += a1 as f64;
                b2[by * bw + bx] += a2 as f64;
            }
        }
        let integral = |b: &[f64]| {
            let mut s = vec![0f64; (bw + 1) * (bh + 1)];
            for y in 0..bh {
                let mut run = 0.0;
                for x in 0..bw {
                    run += b[y * bw + x];
                    s[(y + 1) * (bw + 1) + x + 1] = s[y * (bw + 1) + x + 1] + run;
                }
            }
            s
        };
        Calm {
            block,
            bw,
            bh,
            s1: integral(&b1),
            s2: integral(&b2),
        }
    }

    /// Luma standard deviation over blocks [bx, bx+nw) × [by, by+nh).
    fn sd(&self, bx: usize, by: usize, nw: usize, nh: usize) -> f64 {
        let s = self.bw + 1;
        let sum = |t: &[f64]| {
            t[(by + nh) * s + bx + nw] - t[by * s + bx + nw] - t[(by + nh) * s + bx]
                + t[by * s + bx]
        };
        let n = (nw * nh * self.block * self.block) as f64;
        let m = sum(&self.s1) / n;
        (sum(&self.s2) / n - m * m).max(0.0).sqrt()
    }
}

/// Picks the calmest box of `bw`×`bh` pixels in bands along the top and bottom edges (the subject is
/// rarely there); ties go to the bottom right, where people expect a signature. Returns (x, y, sd).
fn place(px: &Pixels, bw: usize, bh: usize) -> (usize, usize, f64) {
    let (w, h) = (px.width as usize, px.height as usize);
    let short = w.min(h);
    let margin = (short as f64 * 0.025).round() as usize;
    let block = (bh / 4).max(1);
    let calm = Calm::of(px, block);
    let (nw, nh) = (bw.div_ceil(block), bh.div_ceil(block));
    let (mb, band) = (margin / block, (h / 5) / block);
    let max_bx = calm.bw.saturating_sub(nw + mb);
    let max_by = calm.bh.saturating_sub(nh + mb);
    let mut best = (f64::INFINITY, max_bx, max_by);
    let step_x = (nw / 6).max(1);
    let rows = (0..=band.min(max_by))
        .map(|d| max_by - d)
        .chain(mb.min(max_by)..=(mb + band).min(max_by));
    for by in rows {
        let mut bx = max_bx;
        loop {
            // A small pull towards the bottom-right corner decides between equally calm places.
            let pull = ((max_bx - bx) + (max_by - by)) as f64 / (calm.bw + calm.bh) as f64;
            let score = calm.sd(bx, by, nw, nh) + 2.0 * pull;
            if score < best.0 {
                best = (score, bx, by);
            }
            if bx < mb + step_x {
                break;
            }
            bx -= step_x;
        }
    }
    let (x, y) = (best.1 * block, best.2 * block);
    let sd = calm.sd(best.1, best.2, nw, nh);
    (x.min(w - bw), y.min(h - bh), sd)
}

/// Draws the mark in place. `None` when the picture is too small for legible text.
pub fn draw(px: &mut Pixels, mark: &Mark) -> Option<Drawn> {
    if px.channels < 3 {
        return None;
    }
    let (w, h) = (px.width as usize, px.height as usize);
    let text = mark.text();
    // Size relative to the picture: 3 % of the short side, then shrunk to keep the line within
    // 60 % of the width.
    let mut size = (w.min(h) as f32 * 0.03).clamp(MIN_TEXT_PX, 160.0);
    let mut cov = render(&text, size);
    let max_w = w as f32 * 0.6;
    if cov.w as f32 > max_w {
        size *= max_w / cov.w as f32;
        if size < MIN_TEXT_PX {
            return None;
        }
        cov = render(&text, size);
    }
    if cov.w >= w || cov.h >= h {
        return None;
    }
    let (x0, y0, background_sd) = place(px, cov.w, cov.h);

    let lut: [f64; 256] = std::array::from_fn(|i| linear(i as u8));
    let ch = px.channels as usize;
    let stride = w * ch;
    let at = |x: usize, y: usize| (y0 + y) * stride + (x0 + x) * ch;
    // Background: what lies under the glyphs themselves, before drawing.
    let (mut lsum, mut n) = (0f64, 0usize);
    for y in 0..cov.h {
        for x in 0..cov.w {
            if cov.halo[y * cov.w + x] > 0.0 {
                let i = at(x, y);
                lsum += luminance(&lut, &px.data[i..i + 3]);
                n += 1;
            }
        }
    }
    let bg = if n == 0 { 0.5 } else { lsum / n as f64 };
    let light = contrast_ratio(1.0, bg) >= contrast_ratio(0.0, bg);
    let (fg, halo_c) = if light {
        (255.0f32, 0.0f32)
    } else {
        (0.0, 255.0)
    };
    const HALO_ALPHA: f32 = 0.45;
    let blend = |p: &mut [u8], k: usize, alpha: f32| {
        let (ht, tt) = (cov.halo[k] * HALO_ALPHA, cov.text[k] * alpha);
        for c in p.iter_mut() {
            let v = *c as f32;
            let v = v + (halo_c - v) * ht;
            let v = v + (fg - v) * tt;
            *c = v.round().clamp(0.0, 255.0) as u8;
        }
    };
    // The glyph cores, whose blended luminance is what the contrast is measured on.
    let cores: Vec<(usize, usize)> = (0..cov.w * cov.h)
        .filter(|&k| cov.text[k] >= 0.9)
        .map(|k| (k, at(k % cov.w, k / cov.w)))
        .collect();
    let measure = |alpha: f32| {
        let sum: f64 = cores
            .iter()
            .map(|&(k, i)| {
                let mut p = [px.data[i], px.data[i + 1], px.data[i + 2]];
                blend(&mut p, k, alpha);
                luminance(&lut, &p)
            })
            .sum();
        let text_l = if cores.is_empty() {
            bg
        } else {
            sum / cores.len() as f64
        };
        contrast_ratio(text_l, bg)
    };
    // The lowest alpha (from 0.75, in steps of 0.05) whose measured contrast reaches the target
    // lets the most of the picture show through; on a busy background the average hides dark and
    // light spots, so it is measured on the real pixels, not predicted.
    let (alpha, contrast) = (0..=5)
        .map(|k| {
            let a = 0.75 + 0.05 * k as f32;
            (a, measure(a))
        })
        .find(|&(_, c)| c >= TARGET_CONTRAST)
        .unwrap_or_else(|| (1.0, measure(1.0)));
    for y in 0..cov.h {
        for x in 0..cov.w {
            let k = y * cov.w + x;
            if cov.halo[k] > 0.0 || cov.text[k] > 0.0 {
                let i = at(x, y);
                blend(&mut px.data[i..i + 3], k, alpha);
            }
        }
    }
    Some(Drawn {
        text,
        x: x0 as u32,
        y: y0 as u32,
        width: cov.w as u32,
        height: cov.h as u32,
        text_px: size,
        light,
        alpha,
        background_sd,
        contrast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: u32, h: u32, v: u8) -> Pixels {
        Pixels::new(w, h, 3, vec![v; (w * h * 3) as usize])
    }

    fn mark() -> Mark<'static> {
        Mark {
            label: None,
            proof_id: ProofId(0x0123_4567_89ab_cdef),
            date: "2026-11-26",
        }
    }

    #[test]
    fn text_has_label_short_id_and_date() {
        let t = mark().text();
        assert!(t.starts_with("pixseal · px_"), "{t}");
        assert!(t.ends_with(" · 2026-11-26"), "{t}");
        let m = Mark {
            label: Some("  Anna\t\u{7}  Lee  "),
            ..mark()
        };
        assert!(m.text().starts_with("Anna Lee · px_"), "{}", m.text());
    }

    #[test]
    fn light_picture_gets_dark_text_and_dark_picture_light_text() {
        for (v, want_light) in [(240u8, false), (15, true), (128, false)] {
            let mut px = flat(1200, 800, v);
            let d = draw(&mut px, &mark()).expect("drawn");
            assert_eq!(d.light, want_light, "background {v}");
            assert!(d.contrast >= MIN_CONTRAST, "background {v}: {d:?}");
            assert!(px.data.iter().any(|&c| c != v), "nothing drawn on {v}");
        }
    }

    #[test]
    fn mid_grey_reaches_the_target() {
        // The hardest background for a black-or-white choice: both give about 4.6:1 at full alpha.
        let mut px = flat(1000, 1000, 118);
        let d = draw(&mut px, &mark()).unwrap();
        assert!(d.contrast >= TARGET_CONTRAST * 0.95, "{d:?}");
    }

    #[test]
    fn placed_on_the_calm_part() {
        // Busy (noisy) everywhere except a flat band at the top.
        let (w, h) = (1200u32, 900u32);
        let mut s = 0x1234_5678u32;
        let mut px = flat(w, h, 0);
        for y in 0..h as usize {
            for x in 0..w as usize {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let v = if y < 120 { 200 } else { (s >> 24) as u8 };
                px.data[(y * w as usize + x) * 3..][..3].fill(v);
            }
        }
        let d = draw(&mut px, &mark()).unwrap();
        assert!(d.y + d.height <= 120, "placed at {d:?}");
        assert!(d.background_sd < 1.0, "{d:?}");
    }

    #[test]
    fn size_follows_the_picture() {
        let small = draw(&mut flat(640, 480, 200), &mark()).unwrap();
        let large = draw(&mut flat(4000, 3000, 200), &mark()).unwrap();
        assert!(large.text_px > 5.0 * small.text_px, "{small:?} {large:?}");
        assert!(large.width as f32 <= 4000.0 * 0.6 + 1.0);
    }

    #[test]
    fn too_small_is_skipped() {
        assert!(draw(&mut flat(60, 40, 200), &mark()).is_none());
    }
}
