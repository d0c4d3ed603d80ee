//! Embedded ICC profiles converted to sRGB (moxcms), so the output needs no profile.

use moxcms::{ColorProfile, DataColorSpace, Layout, ProfileText, TransformOptions};

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

/// Whether an embedded profile is one the colour stage would leave alone (it names sRGB).
pub fn is_srgb(icc: &[u8]) -> bool {
    std::panic::catch_unwind(|| {
        ColorProfile::new_from_slice(icc)
            .map(|p| p.color_space == DataColorSpace::Rgb && text(&p.description).contains("sRGB"))
            .unwrap_or(false)
    })
    .unwrap_or(false)
}

/// Convert `px` from the embedded `icc` profile to sRGB, using `scratch` as the output buffer.
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
        if text(&src.description).contains("sRGB") {
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
    let len = px.data.len();
    if scratch.len() < len {
        scratch.resize(len, 0);
    } else {
        scratch.truncate(len);
    }
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        transform.transform(&px.data, scratch).is_ok()
    }))
    .unwrap_or(false);
    if !ok {
        return ColourOutcome::Ignored;
    }
    std::mem::swap(&mut px.data, scratch);
    ColourOutcome::Converted
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
    fn garbage_profile_is_ignored_not_fatal() {
        let mut px = Pixels::new(1, 1, 3, vec![1, 2, 3]);
        assert_eq!(
            to_srgb(&mut px, Some(b"not a profile at all"), &mut Vec::new()),
            ColourOutcome::Ignored
        );
        assert_eq!(px.data, vec![1, 2, 3]);
    }
}
