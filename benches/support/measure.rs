//! What the bench targets share: environment knobs, where the data lives,
//! running a child process while measuring its wall time and peak RSS, and
//! best/median summaries.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// `target/bench-data/` of this package (override: `EXFLOW_BENCH_DATA_DIR`).
pub fn data_dir() -> PathBuf {
    match std::env::var_os("EXFLOW_BENCH_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("bench-data"),
    }
}

/// The exflow binary Cargo built for this bench, or `EXFLOW_BIN` to point
/// the harness at another build (or at a stand-in while testing it).
pub fn exflow_bin() -> PathBuf {
    match std::env::var_os("EXFLOW_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_exflow")),
    }
}

/// An unsigned integer knob; accepts `_` separators and k/M suffixes
/// (`EXFLOW_BENCH_PACKETS=1M`).
pub fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(v) = std::env::var(name) else {
        return default;
    };
    let v = v.trim().replace('_', "");
    if v.is_empty() {
        return default;
    }
    let (num, mult) = match v.as_bytes()[v.len() - 1] {
        b'k' | b'K' => (&v[..v.len() - 1], 1_000),
        b'm' | b'M' => (&v[..v.len() - 1], 1_000_000),
        _ => (&v[..], 1),
    };
    match num.parse::<u64>() {
        Ok(n) => n * mult,
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

pub fn env_flag(name: &str, default: bool) -> bool {
    match std::env::var(name) {
        Ok(v) => !matches!(v.trim(), "0" | "false" | "no" | "off" | ""),
        Err(_) => default,
    }
}

/// Cargo passes `--bench` (and filters) to `harness = false` targets; these
/// are the arguments that are not that.
pub fn own_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect()
}

/// One measured child process run.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub wall_s: f64,
    /// Peak resident set size of the child, from `wait4`'s rusage.
    pub max_rss_kb: u64,
    pub stdout: Vec<u8>,
}

/// Runs `cmd` to completion; wall time is from spawn to reap, peak RSS is
/// `ru_maxrss` from `wait4` (the child's own high-water mark, exact, no
/// sampling). Stdout is captured only when `capture_stdout`, otherwise it
/// goes to /dev/null. A non-zero exit is an error carrying stderr's tail.
pub fn run_measured(
    program: &Path,
    args: &[OsString],
    capture_stdout: bool,
) -> Result<RunResult, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(if capture_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id() as libc::pid_t;
    // Drain both pipes before reaping (a thread for stderr so neither can
    // fill up and block the child).
    let mut stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    let mut status: libc::c_int = 0;
    // SAFETY: plain syscall on our own child's pid with valid out-pointers;
    // std's Child is never waited on afterwards.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall_s = start.elapsed().as_secs_f64();
    let stderr = err_thread.join().unwrap_or_default();
    if r != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        let tail =
            String::from_utf8_lossy(&stderr[stderr.len().saturating_sub(2000)..]).into_owned();
        let how = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        return Err(format!(
            "{} {:?} failed ({how}):\n{tail}",
            program.display(),
            args
        ));
    }
    Ok(RunResult {
        wall_s,
        max_rss_kb: usage.ru_maxrss as u64,
        stdout,
    })
}

/// Whether `program` can be started at all (PATH lookup included).
pub fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Reads the file once so every measured run starts from the page cache
/// (the first run would otherwise pay for the disk alone).
pub fn warm_page_cache(path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// `nproc`, CPU model and memory, for the record.
pub fn machine() -> serde_json::Value {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    serde_json::json!({
        "nproc": nproc,
        "cpu_model": model,
        "mem_total_gib": (mem_kb as f64 / 1048576.0 * 10.0).round() / 10.0,
    })
}

pub fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
