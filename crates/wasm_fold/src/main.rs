//! `wasm-fold IN OUT`: [`wasm_fold::fold_load_offsets`] on a module file
//! (`scripts/build_canisters.sh` runs it on the worker after `wasm-opt`).

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: wasm-fold IN.wasm OUT.wasm");
    };
    let wasm = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let folded = wasm_fold::fold_load_offsets(&wasm).with_context(|| format!("folding {input}"))?;
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&folded.module)
        .context("the folded module does not validate")?;
    std::fs::write(output, &folded.module).with_context(|| format!("writing {output}"))?;
    println!(
        "{output}: {} load offsets folded, {} instructions removed",
        folded.folds, folded.removed
    );
    Ok(())
}
