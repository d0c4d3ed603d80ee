//! Developer probe: embeds into a picture and prints how well each stage recovers the tile.
use pixseal_media::Pixels;
use pixseal_proof::ProofId;
use pixseal_watermark::grid::Grid;
use pixseal_watermark::layout::Layout;
use pixseal_watermark::sync::{self, Lattice};
use pixseal_watermark::{Strength, code, detect, embed};

fn main() {
    let path = std::env::args().nth(1).expect("path");
    let img = image::open(&path).expect("open").to_rgb8();
    let mut px = Pixels::new(img.width(), img.height(), 3, img.into_raw());
    let id: ProofId = std::env::args()
        .nth(2)
        .map(|s| s.parse().expect("proof id"))
        .unwrap_or(ProofId(0x1234_5678_9abc_def0));
    let marked = std::env::args().nth(3).is_some();
    if !marked {
        let t = std::time::Instant::now();
        let e = embed(&mut px, id, Strength::default()).expect("embed");
        let mp = (px.width as f64 * px.height as f64) / 1e6;
        println!(
            "psnr {:.2}, embed {:.1} ms/MP",
            e.psnr_luma,
            t.elapsed().as_secs_f64() * 1e3 / mp
        );
    }
    let layout = Layout::v1();
    let truth = layout.chips(&code::encode(id.0));
    let r = Grid::luma_of(
        &px,
        pixseal_watermark::grid::embed_short(px.width, px.height),
    )
    .residual();
    let folded = sync::fold(&r, Lattice::IDENTITY);
    let chips = sync::chips_at(&folded, 0, 0);
    let agree = chips
        .iter()
        .zip(&truth)
        .filter(|(a, b)| a.signum() == b.signum())
        .count();
    println!("identity chip agreement {agree}/256");
    let pilots = sync::Pilots::new(&layout);
    println!("offsets {:?}", pilots.offsets(&folded, 3));
    println!("lattices {:?}", sync::lattices(&r, 4));
    let t = std::time::Instant::now();
    println!("detect {:?} in {:?}", detect(&px), t.elapsed());
}
