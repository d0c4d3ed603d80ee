//! Embedded ICC profiles converted to sRGB (moxcms), so the output needs no profile.

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    ProfileText, TransferCharacteristics, TransformOptions,
};

use crate::Pixels;

/// What the colour stage did; reported so callers can tell which pictures changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourOutcome {
    /// No embedded profile: the picture is taken as sRGB.
    NoProfile,
    /// The profile describes sRGB already.
    AlreadySrgb,
    /// Pixels converted to sRGB.
    Converted,
    /// Profile unreadable or of a kind we do not convert (grey, CMYK, Lab); taken as sRGB.
    Ignored,
}

impl ColourOutcome {
    pub fn name(self) -> &'static str {
        match self {
            ColourOutcome::NoProfile => "no_profile",
            ColourOutcome::AlreadySrgb => "already_srgb",
            ColourOutcome::Converted => "converted",
            ColourOutcome::Ignored => "ignored",
        }
    }
}

fn text(t: &Option<ProfileText>) -> String {
    match t {
        Some(ProfileText::PlainString(s)) => s.clone(),
        Some(ProfileText::Localizable(v)) => v.first().map(|l| l.value.clone()).unwrap_or_default(),
        Some(ProfileText::Description(d)) => d.ascii_string.clone(),
        None => String::new(),
    }
}

/// Whether a profile's name says it is sRGB ("sRGB IEC61966-2.1", "sRGB built-in"…). Only the
/// start counts: "DCI-P3 D65 Gamut with sRGB Transfer" is a P3 profile.
fn names_srgb(p: &ColorProfile) -> bool {
    text(&p.description).trim_start().starts_with("sRGB")
}

/// Whether an embedded profile is one the colour stage would leave alone (it names sRGB).
pub fn is_srgb(icc: &[u8]) -> bool {
    std::panic::catch_unwind(|| {
        ColorProfile::new_from_slice(icc)
            .map(|p| p.color_space == DataColorSpace::Rgb && names_srgb(&p))
            .unwrap_or(false)
    })
    .unwrap_or(false)
}

/// A colour description by code points (ITU-T H.273), as HEIF `nclx` boxes and AV1 carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cicp {
    pub primaries: u8,
    pub transfer: u8,
}

/// H.273 transfer characteristic of PQ (SMPTE ST 2084) signals.
const PQ: u8 = 16;

/// Reference white of a PQ signal in cd/m² (ITU-R BT.2408).
const PQ_REFERENCE_WHITE: f64 = 203.0;
/// Gain applied before the roll-off, chosen so reference white lands at 80 % linear (about
/// 90 % of the sRGB code range), leaving the top for highlights.
const PQ_GAIN: f64 = 4.0;

/// Convert `px` from a CICP description to sRGB.
///
/// BT.709 (or unspecified) primaries with an SDR transfer are sRGB for our purpose and are left
/// alone, and SDR transfer curves are read as sRGB's. PQ is tone-mapped to SDR first, per channel: luminance relative to reference white
/// (203 cd/m²) goes through an extended Reinhard curve whose white point is PQ's 10 000 cd/m²
/// peak, so reference white lands near the top of the range and highlights roll off into it. HLG
/// is taken as its SDR-compatible reading (read as an sRGB curve), which is how HLG was designed
/// to show on SDR screens. Wide gamuts (Display P3, BT.2020) are then converted to sRGB.
pub fn cicp_to_srgb(px: &mut Pixels, cicp: Cicp, scratch: &mut Vec<u8>) -> ColourOutcome {
    let mut changed = false;
    if cicp.transfer == PQ {
        let lut = pq_to_sdr_lut();
        let step = px.channels as usize;
        for p in px.data.chunks_exact_mut(step) {
            for v in &mut p[..3] {
                *v = lut[*v as usize];
            }
        }
        changed = true;
    }
    let primaries =
        CicpColorPrimaries::try_from(cicp.primaries).unwrap_or(CicpColorPrimaries::Reserved);
    let srgb_primaries = matches!(
        primaries,
        CicpColorPrimaries::Bt709 | CicpColorPrimaries::Unspecified | CicpColorPrimaries::Reserved
    );
    if srgb_primaries {
        return if changed {
            ColourOutcome::Converted
        } else {
            ColourOutcome::AlreadySrgb
        };
    }
    // Only the primaries are converted. After the PQ step the samples carry an sRGB curve, and
    // SDR transfers (BT.709, BT.601, BT.2020) are shown on sRGB-like curves by browsers and
    // libvips alike: re-mapping them would brighten the picture against every reference.
    let transfer = match TransferCharacteristics::try_from(cicp.transfer) {
        Ok(TransferCharacteristics::Linear) => TransferCharacteristics::Linear,
        _ => TransferCharacteristics::Srgb,
    };
    let built = std::panic::catch_unwind(|| {
        let src = ColorProfile::new_from_cicp(CicpProfile {
            color_primaries: primaries,
            transfer_characteristics: transfer,
            matrix_coefficients: MatrixCoefficients::Identity,
            full_range: true,
        });
        let layout = if px.channels == 4 {
            Layout::Rgba
        } else {
            Layout::Rgb
        };
        src.create_transform_8bit(
            layout,
            &ColorProfile::new_srgb(),
            layout,
            TransformOptions::default(),
        )
        .ok()
    });
    match built {
        Ok(Some(t)) => apply(px, scratch, |src, dst| t.transform(src, dst).is_ok()),
        _ if changed => ColourOutcome::Converted,
        _ => ColourOutcome::Ignored,
    }
}

/// The PQ → SDR sRGB curve for 8-bit samples (see [`cicp_to_srgb`]).
fn pq_to_sdr_lut() -> [u8; 256] {
    let (m1, m2) = (2610.0 / 16384.0, 2523.0 / 4096.0 * 128.0);
    let (c1, c2, c3) = (
        3424.0 / 4096.0,
        2413.0 / 4096.0 * 32.0,
        2392.0 / 4096.0 * 32.0,
    );
    let white = PQ_GAIN * 10_000.0 / PQ_REFERENCE_WHITE;
    std::array::from_fn(|i| {
        let e = (i as f64 / 255.0).powf(1.0 / m2);
        let nits = 10_000.0 * ((e - c1).max(0.0) / (c2 - c3 * e)).powf(1.0 / m1);
        let x = PQ_GAIN * nits / PQ_REFERENCE_WHITE;
        let y = (x * (1.0 + x / (white * white)) / (1.0 + x)).clamp(0.0, 1.0);
        let srgb = if y <= 0.003_130_8 {
            12.92 * y
        } else {
            1.055 * y.powf(1.0 / 2.4) - 0.055
        };
        (srgb * 255.0).round() as u8
    })
}

/// Bytes converted at a time: a strip of rows, so the colour stage needs no second full frame.
const STRIP_BYTES: usize = 1 << 20;

/// Run a built transform over the picture a strip of rows at a time (through `scratch`, then
/// back in place), guarding against panics. A transform only fails on a size mismatch, which
/// the first strip would show before anything is written back.
fn apply(
    px: &mut Pixels,
    scratch: &mut Vec<u8>,
    run: impl Fn(&[u8], &mut [u8]) -> bool,
) -> ColourOutcome {
    let row = (px.width as usize * px.channels as usize).max(1);
    let strip = (STRIP_BYTES / row).max(1) * row;
    scratch.resize(strip.min(px.data.len()), 0);
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        px.data.chunks_mut(strip).all(|rows| {
            let out = &mut scratch[..rows.len()];
            let done = run(rows, out);
            if done {
                rows.copy_from_slice(out);
            }
            done
        })
    }))
    .unwrap_or(false);
    if !ok {
        return ColourOutcome::Ignored;
    }
    ColourOutcome::Converted
}

/// Convert `px` from the embedded `icc` profile to sRGB, a strip at a time through `scratch`.
pub fn to_srgb(px: &mut Pixels, icc: Option<&[u8]>, scratch: &mut Vec<u8>) -> ColourOutcome {
    let Some(icc) = icc else {
        return ColourOutcome::NoProfile;
    };
    // A hostile profile must never take the picture down with it: parse and build the transform
    // under catch_unwind and fall back to "already sRGB" on any failure.
    let built = std::panic::catch_unwind(|| {
        let src = ColorProfile::new_from_slice(icc).ok()?;
        if src.color_space != DataColorSpace::Rgb {
            return Some(None);
        }
        if names_srgb(&src) {
            return Some(Some(None));
        }
        let layout = if px.channels == 4 {
            Layout::Rgba
        } else {
            Layout::Rgb
        };
        let t = src
            .create_transform_8bit(
                layout,
                &ColorProfile::new_srgb(),
                layout,
                TransformOptions::default(),
            )
            .ok()?;
        Some(Some(Some(t)))
    });
    let transform = match built {
        Ok(Some(Some(Some(t)))) => t,
        Ok(Some(Some(None))) => return ColourOutcome::AlreadySrgb,
        _ => return ColourOutcome::Ignored,
    };
    apply(px, scratch, |src, dst| {
        transform.transform(src, dst).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_p3_colours_get_more_saturated_in_srgb() {
        let icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        let mut px = Pixels::new(1, 1, 3, vec![200, 100, 50]);
        assert_eq!(
            to_srgb(&mut px, Some(&icc), &mut Vec::new()),
            ColourOutcome::Converted
        );
        // The same P3 orange is further from grey in sRGB: more red, less blue.
        assert!(px.data[0] > 205 && px.data[2] < 45, "{:?}", px.data);
        // Neutral greys stay neutral.
        let mut grey = Pixels::new(1, 1, 3, vec![128, 128, 128]);
        to_srgb(&mut grey, Some(&icc), &mut Vec::new());
        assert!(
            grey.data.iter().all(|&v| (126..=130).contains(&v)),
            "{:?}",
            grey.data
        );
    }

    #[test]
    fn p3_by_code_points_converts_like_the_p3_profile() {
        let icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        let mut by_icc = Pixels::new(1, 1, 3, vec![200, 100, 50]);
        to_srgb(&mut by_icc, Some(&icc), &mut Vec::new());
        let mut by_cicp = Pixels::new(1, 1, 3, vec![200, 100, 50]);
        let p3 = Cicp {
            primaries: 12,
            transfer: 13,
        };
        assert_eq!(
            cicp_to_srgb(&mut by_cicp, p3, &mut Vec::new()),
            ColourOutcome::Converted
        );
        for (a, b) in by_icc.data.iter().zip(&by_cicp.data) {
            assert!(
                a.abs_diff(*b) <= 2,
                "{:?} vs {:?}",
                by_icc.data,
                by_cicp.data
            );
        }
        let mut bt709 = Pixels::new(1, 1, 3, vec![200, 100, 50]);
        let sdr = Cicp {
            primaries: 1,
            transfer: 1,
        };
        assert_eq!(
            cicp_to_srgb(&mut bt709, sdr, &mut Vec::new()),
            ColourOutcome::AlreadySrgb
        );
        assert_eq!(bt709.data, vec![200, 100, 50]);
    }

    #[test]
    fn pq_reference_white_lands_near_the_top_and_the_peak_on_it() {
        let lut = pq_to_sdr_lut();
        assert_eq!(lut[0], 0);
        assert_eq!(lut[255], 255);
        // 203 cd/m² is PQ code 0.58 (148 of 255): about 90 % of the SDR range.
        assert!((220..=240).contains(&lut[148]), "{}", lut[148]);
        // 1000 cd/m² (PQ 0.75, 192) still below the top: highlights keep some detail.
        assert!((241..=254).contains(&lut[192]), "{}", lut[192]);
        assert!(lut.windows(2).all(|w| w[0] <= w[1]), "monotonic");
    }

    #[test]
    fn a_p3_profile_with_srgb_in_its_name_is_still_converted() {
        let mut p3 = moxcms::ColorProfile::new_display_p3();
        p3.description = Some(ProfileText::PlainString(
            "DCI-P3 D65 Gamut with sRGB Transfer".into(),
        ));
        let icc = p3.encode().unwrap();
        assert!(!is_srgb(&icc));
        let mut px = Pixels::new(1, 1, 3, vec![200, 100, 50]);
        assert_eq!(
            to_srgb(&mut px, Some(&icc), &mut Vec::new()),
            ColourOutcome::Converted
        );
        assert!(is_srgb(&moxcms::ColorProfile::new_srgb().encode().unwrap()));
    }

    #[test]
    fn garbage_profile_is_ignored_not_fatal() {
        let mut px = Pixels::new(1, 1, 3, vec![1, 2, 3]);
        assert_eq!(
            to_srgb(&mut px, Some(b"not a profile at all"), &mut Vec::new()),
            ColourOutcome::Ignored
        );
        assert_eq!(px.data, vec![1, 2, 3]);
    }
}
