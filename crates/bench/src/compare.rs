//! The comparison grid: every workload at every concurrency on every path,
//! repeated and interleaved so that each repetition of a path runs beside the
//! same repetition of the floor.

use std::time::Duration;

use crate::fleet::Path;
use crate::load::{self, Seed, WORKLOADS, Workload};
use crate::procfs;
use crate::report::{self, Stats};

/// How long and how often.
pub struct Settings {
    pub duration: Duration,
    pub reps: usize,
    pub concurrency: Vec<usize>,
    pub stored_tokens: usize,
}

impl Settings {
    /// `--quick`: one short repetition at two concurrencies, for CI; else
    /// three of three seconds each at three, over 100,000 stored tokens.
    pub fn new(quick: bool) -> Self {
        match quick {
            true => Self {
                duration: Duration::from_millis(300),
                reps: 1,
                concurrency: vec![1, 16],
                stored_tokens: 1_000,
            },
            false => Self {
                duration: Duration::from_secs(3),
                reps: 3,
                concurrency: vec![1, 16, 64],
                stored_tokens: 100_000,
            },
        }
    }
}

/// `cells[workload][concurrency][path]` = one [`Stats`] per repetition.
pub struct Grid {
    pub concurrency: Vec<usize>,
    cells: Vec<Vec<Vec<Vec<Stats>>>>,
    /// Latencies of the mixed workload at concurrency 16, per path, sorted.
    pub cdf: Vec<Vec<u64>>,
}

impl Grid {
    /// The repetitions of one cell (empty when `c` was not measured).
    pub fn cell(&self, workload: usize, c: usize, path: usize) -> &[Stats] {
        self.concurrency
            .iter()
            .position(|&x| x == c)
            .map_or(&[], |ci| &self.cells[workload][ci][path])
    }
}

/// One measurement of `workload` on `path` by `c` callers.
pub async fn cell(
    path: &Path,
    workload: Workload,
    seeds: &mut [Seed],
    c: usize,
    duration: Duration,
) -> (Stats, Vec<u64>) {
    let mut one;
    let seeds = match workload.one_client {
        true => {
            one = vec![seeds[0].clone(); c];
            &mut one[..]
        }
        false => &mut seeds[..c],
    };
    let cpu0 = procfs::cpu_seconds(path.pid);
    let mut sample = load::run(&path.target, workload.mix, seeds, duration).await;
    let cpu = procfs::cpu_seconds(path.pid) - cpu0;
    let stats = report::stats(&mut sample, cpu);
    (stats, sample.latencies_us)
}

/// Runs the grid; `seeds[path]` holds at least the largest concurrency's
/// clients, registered through that path.
pub async fn run(paths: &[Path], seeds: &mut [Vec<Seed>], settings: &Settings) -> Grid {
    let n = settings.concurrency.len();
    let mut cells = vec![vec![vec![Vec::new(); paths.len()]; n]; WORKLOADS.len()];
    let mut cdf = vec![Vec::new(); paths.len()];
    for _ in 0..settings.reps {
        for (wi, &workload) in WORKLOADS.iter().enumerate() {
            for (ci, &c) in settings.concurrency.iter().enumerate() {
                for (pi, path) in paths.iter().enumerate() {
                    let (stats, latencies) =
                        cell(path, workload, &mut seeds[pi], c, settings.duration).await;
                    if wi == 0 && c == 16 {
                        cdf[pi].extend(latencies);
                    }
                    cells[wi][ci][pi].push(stats);
                }
            }
        }
    }
    for l in &mut cdf {
        l.sort_unstable();
    }
    Grid {
        concurrency: settings.concurrency.clone(),
        cells,
        cdf,
    }
}
