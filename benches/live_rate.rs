//! Live capture rate: the highest tcpreplay rate `exflow live` captures
//! with zero kernel drops on this machine.
//!
//! `cargo bench --bench live_rate` (as root: network namespaces, capture);
//! knobs and method in BENCHMARKS.md. Two namespaces joined by a veth pair
//! (no addresses, no route); the `mixed` capture of the other benches is
//! replayed with `tcpreplay --pps R` into one end while `exflow live
//! --format json -o /dev/null` captures the other; after each run exflow is
//! stopped with SIGINT and its "dropped by the kernel" count read. Rates
//! double until a run drops, then a bisection narrows the boundary; when
//! none drops, a last run replays with `--topspeed`. Knobs:
//! EXFLOW_LIVE_RATE_PACKETS (capture size, default 500000),
//! EXFLOW_LIVE_RATE_START (first rate, default 25000 pps), EXFLOW_LIVE_ARGS
//! (extra `exflow live` arguments, e.g. `--buffer-size 2`).

#[path = "support/capgen.rs"]
mod capgen;
#[path = "support/measure.rs"]
mod measure;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use measure::env_u64;

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?} failed");
}

struct Netns {
    a: String,
    b: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

struct Trial {
    pps: u64,
    sent: u64,
    actual_pps: f64,
    captured: u64,
    kernel_drops: u64,
}

fn trial(ns: &Netns, exflow: &Path, pcap: &Path, pps: u64, extra: &[String]) -> Trial {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.b])
        .arg(exflow)
        .args(["live", "-i", "vb", "--no-status", "--events", "/dev/null"])
        .args(["--format", "json", "-o", "/dev/null"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exflow live");
    // The capture is open once exflow says so on stderr.
    let mut stderr = child.stderr.take().unwrap();
    let mut head = Vec::new();
    let t0 = Instant::now();
    let mut byte = [0u8; 1];
    use std::io::Read;
    while !head.ends_with(b"\n") && t0.elapsed() < Duration::from_secs(10) {
        if stderr.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.a, "tcpreplay", "-i", "va"])
        .arg(if pps == 0 {
            "--topspeed".to_string()
        } else {
            format!("--pps={pps}")
        })
        .arg(pcap)
        .output()
        .expect("tcpreplay");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child (ip netns exec execs exflow).
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    child.wait().unwrap();
    let num_after = |s: &str, key: &str| -> Option<f64> {
        let i = s.find(key)? + key.len();
        s[i..]
            .trim_start()
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?
            .parse()
            .ok()
    };
    Trial {
        pps,
        sent: num_after(&text, "Actual:").unwrap_or(0.0) as u64,
        actual_pps: num_after(&text, "Rated:")
            .and_then(|_| {
                // "Rated: 12345.6 Bps, 0.09 Mbps, 99.9 pps"
                let line = text.lines().find(|l| l.contains("Rated:"))?;
                let pps = line.split(',').find(|p| p.contains("pps"))?;
                pps.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or(0.0),
        captured: num_after(&rest, "exflow: ").unwrap_or(0.0) as u64,
        kernel_drops: num_after(&rest, "dropped by the kernel:").unwrap_or(u64::MAX as f64) as u64,
    }
}

fn main() {
    measure::exit_unless_benching();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "live_rate needs root (network namespaces, capture)"
    );
    let packets = env_u64("EXFLOW_LIVE_RATE_PACKETS", 500_000);
    let start = env_u64("EXFLOW_LIVE_RATE_START", 25_000);
    let extra: Vec<String> = std::env::var("EXFLOW_LIVE_ARGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let (pcap, sum) = capgen::ensure(&measure::data_dir(), capgen::Profile::Mixed { packets })
        .expect("generating the capture");
    let exflow = measure::exflow_bin();
    let id = std::process::id();
    let ns = Netns {
        a: format!("exflow-rate{id}a"),
        b: format!("exflow-rate{id}b"),
    };
    sh(&["ip", "netns", "add", &ns.a]);
    sh(&["ip", "netns", "add", &ns.b]);
    sh(&[
        "ip", "-n", &ns.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns",
        &ns.b,
    ]);
    for (n, d) in [(&ns.a, "va"), (&ns.b, "vb")] {
        sh(&[
            "ip",
            "netns",
            "exec",
            n,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        sh(&["ip", "-n", n, "link", "set", d, "mtu", "9000", "up"]);
    }
    println!(
        "live_rate: {} ({} packets, {} bytes), exflow live {} on the far end of a veth",
        pcap.display(),
        sum.packets,
        sum.file_bytes,
        extra.join(" ")
    );
    println!(
        "{:>10} {:>12} {:>10} {:>10} {:>12}",
        "asked pps", "actual pps", "sent", "captured", "kernel drops"
    );
    let show = |t: &Trial| {
        println!(
            "{:>10} {:>12.0} {:>10} {:>10} {:>12}",
            t.pps, t.actual_pps, t.sent, t.captured, t.kernel_drops
        );
    };
    let clean = |t: &Trial| t.kernel_drops == 0 && t.captured == t.sent && t.sent > 0;
    let mut good: Option<Trial> = None;
    let mut bad: Option<u64> = None;
    let mut pps = start;
    while bad.is_none() && pps <= 4_000_000 {
        let t = trial(&ns, &exflow, &pcap, pps, &extra);
        show(&t);
        if clean(&t) {
            good = Some(t);
            pps *= 2;
        } else {
            bad = Some(pps);
        }
    }
    if let (Some(hi), Some(lo)) = (bad, good.as_ref().map(|g| g.pps)) {
        let (mut lo, mut hi) = (lo, hi);
        while hi - lo > lo / 8 {
            let mid = (lo + hi) / 2;
            let t = trial(&ns, &exflow, &pcap, mid, &extra);
            show(&t);
            if clean(&t) {
                lo = mid;
                good = Some(t);
            } else {
                hi = mid;
            }
        }
    }
    if bad.is_none() {
        // Every rate asked was captured whole: tcpreplay as fast as it goes.
        let t = trial(&ns, &exflow, &pcap, 0, &extra);
        println!("(--topspeed)");
        show(&t);
        if clean(&t) {
            good = Some(t);
        }
    }
    match good {
        Some(t) => println!(
            "highest rate with zero kernel drops: asked {}, tcpreplay achieved {:.0} pps ({} packets, all captured)",
            if t.pps == 0 { "--topspeed".to_string() } else { format!("{} pps", t.pps) },
            t.actual_pps,
            t.sent
        ),
        None => println!("every rate tried dropped packets (from {start} pps)"),
    }
}
