//! The coding layer: proof id + integrity check, a rate-1/2 convolutional code and its soft Viterbi decoder.
//!
//! 64 id bits + 32 check bits + 6 zero tail bits = 102 steps of the K=7 (171, 133) code = 204 coded bits.
//! The check is the first 32 bits of SHA-256 over a domain tag and the id: a decode of noise passes it
//! with probability 2^-32, which is what bounds false matches (docs/watermark.md).

use sha2::{Digest, Sha256};

/// Information bits: the 64-bit id followed by its 32-bit check.
pub const INFO_BITS: usize = 96;
const K: usize = 7;
const TAIL: usize = K - 1;
const STEPS: usize = INFO_BITS + TAIL;
/// Coded bits per payload.
pub const CODED_BITS: usize = 2 * STEPS;
const STATES: usize = 1 << TAIL;
const G0: u32 = 0o171;
const G1: u32 = 0o133;

/// The 32-bit integrity check of an id.
pub fn check(id: u64) -> u32 {
    let mut h = Sha256::new();
    h.update(b"pixseal watermark v1\n");
    h.update(id.to_be_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn info_bits(id: u64) -> [bool; INFO_BITS] {
    let word = ((id as u128) << 32) | check(id) as u128;
    let mut bits = [false; INFO_BITS];
    for (i, b) in bits.iter_mut().enumerate() {
        *b = (word >> (INFO_BITS - 1 - i)) & 1 == 1;
    }
    bits
}

fn parity(x: u32) -> bool {
    x.count_ones() & 1 == 1
}

/// Encodes an id into [`CODED_BITS`] bits.
pub fn encode(id: u64) -> [bool; CODED_BITS] {
    let info = info_bits(id);
    let mut out = [false; CODED_BITS];
    let mut reg: u32 = 0;
    for step in 0..STEPS {
        let bit = step < INFO_BITS && info[step];
        reg = ((reg << 1) | bit as u32) & ((1 << K) - 1);
        out[2 * step] = parity(reg & G0);
        out[2 * step + 1] = parity(reg & G1);
    }
    out
}

/// Soft-decision Viterbi decoding. `soft[i] > 0` means coded bit i is more likely 1; magnitudes are
/// confidences. Returns the id only when the decoded check matches.
pub fn decode(soft: &[f32; CODED_BITS]) -> Option<u64> {
    let mut metric = [f32::NEG_INFINITY; STATES];
    metric[0] = 0.0;
    // Survivor bits per step, one u64 per state (STATES = 64 fits).
    let mut history = [[0u8; STATES]; STEPS];
    for step in 0..STEPS {
        let (s0, s1) = (soft[2 * step], soft[2 * step + 1]);
        let mut next = [f32::NEG_INFINITY; STATES];
        let inputs: &[u32] = if step < INFO_BITS { &[0, 1] } else { &[0] };
        for (state, &m) in metric.iter().enumerate() {
            if m == f32::NEG_INFINITY {
                continue;
            }
            for &bit in inputs {
                let reg = ((state as u32) << 1) | bit;
                let o0 = if parity(reg & G0) { s0 } else { -s0 };
                let o1 = if parity(reg & G1) { s1 } else { -s1 };
                let ns = (reg as usize) & (STATES - 1);
                let cand = m + o0 + o1;
                if cand > next[ns] {
                    next[ns] = cand;
                    // Remember the predecessor's oldest bit so the path can be walked back.
                    history[step][ns] = (state >> (TAIL - 1)) as u8;
                }
            }
        }
        metric = next;
    }
    // The tail forces the encoder back to state 0.
    if metric[0] == f32::NEG_INFINITY {
        return None;
    }
    let mut state = 0usize;
    let mut bits = [false; STEPS];
    for step in (0..STEPS).rev() {
        bits[step] = state & 1 == 1;
        let oldest = history[step][state] as usize;
        state = (state >> 1) | (oldest << (TAIL - 1));
    }
    let mut word: u128 = 0;
    for &b in &bits[..INFO_BITS] {
        word = (word << 1) | b as u128;
    }
    let id = (word >> 32) as u64;
    let chk = (word & 0xffff_ffff) as u32;
    (check(id) == chk).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soft_of(bits: &[bool; CODED_BITS]) -> [f32; CODED_BITS] {
        let mut s = [0f32; CODED_BITS];
        for (o, &b) in s.iter_mut().zip(bits) {
            *o = if b { 1.0 } else { -1.0 };
        }
        s
    }

    /// splitmix64, for reproducible test noise.
    fn rng(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn clean_round_trip() {
        for id in [0u64, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(decode(&soft_of(&encode(id))), Some(id));
        }
    }

    #[test]
    fn corrects_scattered_hard_errors() {
        // A K=7 rate-1/2 code has free distance 10: any 4 errors are corrected; spaced errors far more.
        let id = 0xdead_beef_cafe_f00d;
        let mut soft = soft_of(&encode(id));
        for i in (0..CODED_BITS).step_by(12) {
            soft[i] = -soft[i];
        }
        assert_eq!(decode(&soft), Some(id));
    }

    #[test]
    fn corrects_gaussian_noise_at_low_snr() {
        let mut seed = 7u64;
        let mut ok = 0;
        for trial in 0..200u64 {
            let id = rng(&mut seed) ^ trial;
            let mut soft = soft_of(&encode(id));
            // Noise sigma 0.8: raw hard-decision bit error rate ~11%.
            for s in soft.iter_mut() {
                let u1 = (rng(&mut seed) >> 11) as f64 / (1u64 << 53) as f64 + 1e-12;
                let u2 = (rng(&mut seed) >> 11) as f64 / (1u64 << 53) as f64;
                let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                *s += 0.8 * g as f32;
            }
            ok += (decode(&soft) == Some(id)) as u32;
        }
        assert!(ok >= 190, "only {ok}/200 decoded");
    }

    #[test]
    fn garbage_is_rejected() {
        let mut seed = 99u64;
        let mut false_accepts = 0;
        for _ in 0..20_000 {
            let mut soft = [0f32; CODED_BITS];
            for s in soft.iter_mut() {
                *s = (rng(&mut seed) as i64 as f64 / i64::MAX as f64) as f32;
            }
            false_accepts += decode(&soft).is_some() as u32;
        }
        assert_eq!(false_accepts, 0);
    }

    #[test]
    fn a_wrong_check_is_rejected() {
        let id = 42u64;
        let mut soft = soft_of(&encode(id));
        // Flip enough bits in one region to decode a different word; the check must refuse it.
        for s in soft.iter_mut().take(40) {
            *s = -*s;
        }
        assert_eq!(decode(&soft), None);
    }
}
