//! What the bench targets share: environment knobs, where the data lives,
//! running a child process while measuring its wall time and peak RSS, and
//! best/median summaries.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
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

/// `cargo test --all-targets` (or `--benches`) also builds and runs bench
/// targets, without `--bench`: minutes of work and gigabytes of data have
/// no place in a test run, so say so and stop.
pub fn exit_unless_benching() {
    if !std::env::args().any(|a| a == "--bench" || a == "--gen-only") {
        println!("skipped: not run by `cargo bench` (pass --bench to run it directly); see BENCHMARKS.md");
        std::process::exit(0);
    }
}

/// One measured child process run.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub wall_s: f64,
    /// Peak resident set size of the child itself: `VmHWM` read from
    /// /proc/PID/status when the child stops at its exit (see
    /// [`run_measured`]).
    pub max_rss_kb: u64,
    /// `wait4`'s `ru_maxrss`, for the record: it is not the child's own
    /// peak, since Linux folds the pre-exec address space — a copy of (or,
    /// with vfork, the very) parent's — into it; a child of a 200 MiB
    /// process reports at least 200 MiB even if it is `/bin/true`.
    pub ru_maxrss_kb: u64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `program args` to completion and measures it.
///
/// Wall time is from spawn to reap. Peak RSS is exact and the child's own:
/// the child runs under ptrace (PTRACE_TRACEME before exec, then
/// PTRACE_O_TRACEEXIT), so it stops once as it exits, with its memory still
/// mapped, and its `VmHWM` (high-water RSS of the exec'd image) is read
/// then. Only the exec and the exit stop; the run itself is not slowed.
/// Stdout is captured when `capture_stdout`, else sent to /dev/null. A
/// non-zero exit is an error carrying stderr's tail.
pub fn run_measured(
    program: &Path,
    args: &[OsString],
    capture_stdout: bool,
) -> Result<RunResult, String> {
    run_measured_ok(program, args, capture_stdout, &[0])
}

/// Exit codes of a complete `exflow analyze` run: 0 clean, 1 findings
/// (README, "Exit codes"); 2 (error) and 3 (partial input) are failures.
pub const EXFLOW_OK: &[i32] = &[0, 1];

/// [`run_measured`], where any exit status in `ok_codes` means success.
pub fn run_measured_ok(
    program: &Path,
    args: &[OsString],
    capture_stdout: bool,
    ok_codes: &[i32],
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
    // SAFETY: only an async-signal-safe syscall between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id() as libc::pid_t;
    // Drain the pipes on other threads: this one must answer ptrace stops.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let err_thread = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let out_thread = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut hwm_kb = None;
    let mut traced = false;
    loop {
        // SAFETY: waiting for our own child with valid out-pointers; std's
        // Child is never waited on.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("wait4 failed: {e}"));
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            break;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let mut inject = 0;
        if !traced && sig == libc::SIGTRAP {
            // The stop after exec: ask to stop again at exit, and make the
            // child die with us if the bench is interrupted.
            traced = true;
            // Later execs (a wrapper script exec'ing the real binary) then
            // stop as PTRACE_EVENT_EXEC instead of raising SIGTRAP.
            let opts =
                libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;
            // SAFETY: our stopped tracee.
            unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts) };
        } else if status >> 8 == (libc::SIGTRAP | (libc::PTRACE_EVENT_EXIT << 8)) {
            hwm_kb = read_vm_hwm_kb(pid);
        } else if status >> 8 == (libc::SIGTRAP | (libc::PTRACE_EVENT_EXEC << 8)) {
            // Nothing to do: VmHWM starts afresh with the new image.
        } else {
            inject = sig; // an ordinary signal: deliver it
        }
        // SAFETY: our stopped tracee.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, inject) };
    }
    let wall_s = start.elapsed().as_secs_f64();
    let stderr = err_thread.join().unwrap_or_default();
    let stdout = out_thread.join().unwrap_or_default();
    let ok = libc::WIFEXITED(status) && ok_codes.contains(&libc::WEXITSTATUS(status));
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
    let Some(max_rss_kb) = hwm_kb else {
        return Err(format!(
            "{}: no exit stop seen, cannot tell its peak RSS",
            program.display()
        ));
    };
    Ok(RunResult {
        wall_s,
        max_rss_kb,
        ru_maxrss_kb: usage.ru_maxrss as u64,
        stdout,
        stderr,
    })
}

fn read_vm_hwm_kb(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
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

/// `exflow analyze FILE --format json -o REPORT --threads 2 EXTRA...` on a
/// warm page cache, measured, and the report it wrote (the hostile and
/// flood benches).
pub fn analyze_json_measured(
    exflow: &Path,
    file: &Path,
    report: &Path,
    extra: &[&str],
) -> (RunResult, serde_json::Value) {
    let mut args: Vec<OsString> = vec![
        "analyze".into(),
        file.as_os_str().into(),
        "--format".into(),
        "json".into(),
        "-o".into(),
        report.as_os_str().into(),
        "--threads".into(),
        "2".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    warm_page_cache(file).expect("reading the capture");
    let r = run_measured_ok(exflow, &args, false, EXFLOW_OK).unwrap_or_else(|e| panic!("{e}"));
    let v = serde_json::from_slice(&std::fs::read(report).expect("the report")).expect("JSON");
    (r, v)
}

/// "peak RSS: A MiB {with}, B MiB {without}: +D MiB" and the wall times of
/// the two runs of a hostile bench.
pub fn print_added(with: &RunResult, without: &RunResult, names: (&str, &str)) {
    println!(
        "peak RSS: {:.1} MiB {}, {:.1} MiB {}: +{:.1} MiB",
        mib(with.max_rss_kb),
        names.0,
        mib(without.max_rss_kb),
        names.1,
        mib(with.max_rss_kb.saturating_sub(without.max_rss_kb))
    );
    println!(
        "wall: {:.2} s {}, {:.2} s {}",
        with.wall_s, names.0, without.wall_s, names.1
    );
}
