//! Writes seed inputs for every fuzz target under a corpus directory (default
//! `fuzz/corpus`): `fuzz-seeds [DIR]`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    for (index, (target, bytes)) in timecoin_fuzz_checks::seeds().into_iter().enumerate() {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir)?;
        std::fs::write(target_dir.join(format!("seed-{index}")), bytes)?;
    }
    Ok(())
}
