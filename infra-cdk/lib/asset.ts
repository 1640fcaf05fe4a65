/**
 * Locates the prebuilt Rust Lambda (`bootstrap`) and fails synth early, with build instructions,
 * when it is missing.
 *
 * Why prebuilt: synth never compiles Rust. A release build of curflow takes 25-40 minutes on two
 * cores and needs cargo-lambda + zig; doing that inside `cdk synth` (as cargo-lambda-cdk's
 * RustFunction does, falling back to Docker) would make every synth and every unit test slow and
 * network-dependent. The binary is built once and pointed at with `-c lambdaAssetDir=...`.
 */
import * as fs from 'fs';
import type { LambdaArch } from './config';

/** The cargo-lambda command that produces the asset for an architecture (run from the repo root). */
export function buildCommand(arch: LambdaArch): string {
  const flag = arch === 'arm64' ? '--arm64' : '--x86-64';
  return `cargo lambda build --release ${flag} -p curflow --bin curflow-lambda`;
}

/** Thrown when the asset directory or its `bootstrap` is missing. */
export class MissingLambdaAssetError extends Error {
  constructor(dir: string, arch: LambdaArch, what: string) {
    super(
      `curflow: Lambda asset ${what}: ${dir}\n` +
        `  Build it from the repository root with:\n` +
        `    ${buildCommand(arch)}\n` +
        `  (it writes target/lambda/curflow-lambda/bootstrap; if CARGO_TARGET_DIR is set, the directory is\n` +
        `  $CARGO_TARGET_DIR/lambda/curflow-lambda), then synth/deploy with\n` +
        `    npx cdk synth -c lambdaAssetDir=<directory holding bootstrap>${arch === 'x86_64' ? ' -c lambdaArch=x86_64' : ''}`,
    );
    this.name = 'MissingLambdaAssetError';
  }
}

/**
 * Returns `dir` if it is a directory containing a `bootstrap` file, else throws
 * {@link MissingLambdaAssetError}.
 */
export function checkLambdaAsset(dir: string, arch: LambdaArch): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new MissingLambdaAssetError(dir, arch, 'directory does not exist');
  }
  if (!st.isDirectory()) throw new MissingLambdaAssetError(dir, arch, 'path is not a directory');
  const bootstrap = `${dir}/bootstrap`;
  if (!fs.existsSync(bootstrap) || !fs.statSync(bootstrap).isFile()) {
    throw new MissingLambdaAssetError(dir, arch, 'directory has no "bootstrap" file');
  }
  return dir;
}
