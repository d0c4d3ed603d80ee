//! The tile: 16×16 chips repeated over the working grid; which chips are pilots, which carry coded bits.

use crate::code::CODED_BITS;

/// Working-grid pixels per chip side.
pub const CHIP: usize = 4;
/// Chips per tile side.
pub const TILE_CHIPS: usize = 16;
/// Working-grid pixels per tile side.
pub const TILE: usize = CHIP * TILE_CHIPS;
pub const CHIPS: usize = TILE_CHIPS * TILE_CHIPS;
pub const PILOTS: usize = CHIPS - CODED_BITS;

/// What each chip of the tile holds, fixed for format version 1.
pub struct Layout {
    /// For chip k (row-major), `Some(i)` = coded bit i, `None` = pilot.
    pub role: [Option<u16>; CHIPS],
    /// Pseudo-random sign per chip: pilots show it, coded bits are multiplied by it (so the
    /// pattern looks like noise whatever the id is).
    pub sign: [f32; CHIPS],
}

/// splitmix64: a fixed, documented sequence; nothing secret depends on it.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Layout {
    pub fn v1() -> Self {
        let mut seed = 0x7069_7873_6561_6c31; // "pixseal1"
        let mut order: Vec<usize> = (0..CHIPS).collect();
        // Fisher–Yates: coded bits scattered over the tile so a local flaw hits few neighbours.
        for i in (1..CHIPS).rev() {
            let j = (next(&mut seed) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut role = [None; CHIPS];
        for (i, &chip) in order.iter().take(CODED_BITS).enumerate() {
            role[chip] = Some(i as u16);
        }
        let mut sign = [0f32; CHIPS];
        for s in sign.iter_mut() {
            *s = if next(&mut seed) & 1 == 1 { 1.0 } else { -1.0 };
        }
        Layout { role, sign }
    }

    /// Chip values (±1) of the tile for a coded word.
    pub fn chips(&self, coded: &[bool; CODED_BITS]) -> [f32; CHIPS] {
        let mut out = [0f32; CHIPS];
        for ((o, role), &sign) in out.iter_mut().zip(&self.role).zip(&self.sign) {
            *o = match role {
                Some(i) => sign * if coded[*i as usize] { 1.0 } else { -1.0 },
                None => sign,
            };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coded_bit_has_one_chip_and_pilots_fill_the_rest() {
        let l = Layout::v1();
        let mut seen = [0u8; CODED_BITS];
        for r in l.role.iter().flatten() {
            seen[*r as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n == 1));
        assert_eq!(l.role.iter().filter(|r| r.is_none()).count(), PILOTS);
        let ones = l.sign.iter().filter(|&&s| s > 0.0).count();
        assert!((96..=160).contains(&ones), "signs unbalanced: {ones}");
    }
}
