//! The `exflow` command line. All the work lives in the library; this file
//! only parses arguments, wires a source to the pipeline and renders output.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use clap::{Args, Parser, Subcommand, ValueEnum};

use exflow::analysis::{self, Analysis};
use exflow::capture::{self, Source};
use exflow::correlate::CorrelateConfig;
use exflow::flow::{FlowConfig, SECOND};
use exflow::live_out::{EventsOutput, Notice, ReportFile};
use exflow::pipeline::{self, Options, LOGICAL_SHARDS};
use exflow::policy::Policy;
use exflow::report;
use exflow::roles::{Cidr, Roles};

/// Exit codes (also documented in README.md).
mod exit {
    /// Analyzed; nothing blocked or out of policy.
    pub const CLEAN: u8 = 0;
    /// Analyzed; findings present.
    pub const FINDINGS: u8 = 1;
    /// Could not analyze: bad arguments or unreadable input.
    pub const ERROR: u8 = 2;
    /// Analyzed partially: an input was corrupt or truncated; `exflow
    /// live`: the capture stopped early or had a gap (the interface went
    /// down or disappeared), or an output (`--events`, `-w`) failed.
    pub const PARTIAL: u8 = 3;
    /// `exflow live` could not write its outputs within `--stop-timeout`
    /// of the stop.
    pub const STUCK: u8 = 4;
    /// `exflow live` stopped by a second signal, without its report.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "exflow",
    version,
    about = "Passive analyzer for Exchange and Active Directory traffic across firewalls",
    long_about = "exflow reads packet captures, rebuilds every TCP and UDP conversation and \
                  tells which connections worked and which failed (unanswered SYNs, resets, \
                  ICMP errors) — the ground truth you need when Exchange or Active Directory \
                  traffic has to cross a firewall.",
    after_help = "Exit codes: 0 analyzed, nothing to act on; 1 findings present; \
                  2 could not analyze (bad arguments, unreadable input); \
                  3 partial (an input was corrupt or truncated; the report covers what was read; \
                  live: see exflow live --help); 4 live: the outputs were not written within \
                  --stop-timeout.\n\n\
                  Start with: exflow analyze --help"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyze pcap/pcapng files (offline): flows, hand-offs, blocked ports, verdicts
    #[command(after_help = ANALYZE_EXAMPLES)]
    Analyze(Box<AnalyzeArgs>),
    /// Write, check and explain policy files (the expected firewall policy)
    #[command(subcommand, after_help = POLICY_EXAMPLES)]
    Policy(PolicyCommand),
    /// Capture on a network interface: stream hand-offs and failed attempts as they happen,
    /// write the full report when stopped (Ctrl-C, SIGTERM, --duration or --count)
    #[command(after_help = LIVE_EXAMPLES)]
    Live(Box<LiveArgs>),
    /// Record what talks to what (a baseline), or merge baselines
    #[command(
        after_help = BASELINE_EXAMPLES,
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Baseline(Box<BaselineArgs>),
    /// Compare two baselines (or captures): new and vanished flows, failure rates, new ports
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(Box<DiffArgs>),
    /// Firewall rules allowing exactly the successful Exchange/AD traffic of a baseline
    #[command(after_help = RULES_EXAMPLES)]
    Rules(RulesArgs),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Write a starter policy file (documentation addresses: edit them)
    Init {
        /// Built-in profiles to enable (see `exflow policy profiles`)
        #[arg(long = "profile", value_name = "NAME", value_delimiter = ',')]
        profiles: Vec<String>,
        /// Where to write it (- for standard output, the default)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Validate a policy file and print what it allows, denies and pins
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        version: ExchangeVersionArg,
    },
    /// List the built-in profiles (one per KB scenario)
    Profiles,
    /// Write a policy file from a baseline: today's working traffic as the expected policy
    FromBaseline {
        /// A baseline file (`exflow baseline`)
        #[arg(value_name = "BASELINE")]
        baseline: PathBuf,
        /// Where to write it (- for standard output, the default)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        version: ExchangeVersionArg,
    },
}

const POLICY_EXAMPLES: &str = "Examples:
  exflow policy profiles
      the built-in profiles: the flows each KB scenario needs
  exflow policy init --profile exchange55-mapi-clients,pop3-clients -o policy.json
      a starter file: edit the groups' addresses, then check it
  exflow policy check policy.json
      validate it (errors name the exact field) and print what it allows, and for each
      pin the registry value, what to restart and how to choose the port; two values
      pinned to one port are refused (--exchange-version picks the version's values
      when the profiles do not)
  exflow analyze --policy policy.json client-side.pcap
      verdicts against the policy: misconfigured firewall, denied but needed,
      open but not in the policy, in the policy but never seen
  exflow policy from-baseline baseline.json -o policy.json
      today's working traffic (exflow baseline) as the expected policy";

const LIVE_EXAMPLES: &str = "Examples:
  exflow live --list-interfaces
      the interfaces libpcap can capture on
  exflow live -i eth1 --events events.ndjson -o report.txt
      capture on a SPAN port; hand-offs and failed attempts go to events.ndjson the moment
      they are known (one JSON record per line, flushed); Ctrl-C writes the final report
  exflow live -i eth1 --filter 'tcp port 135 or tcp portrange 1024-65535' --duration 1h
      the endpoint mapper and every port it may hand out, for one hour, then the report on
      standard output (a hand-off whose follow-up the filter drops is not-captured)
  exflow live -i eth1 -w /var/tmp/span.pcap --rotate-size 500 --user nobody
      also keep what was captured (span.pcap, span.pcap.1, ...; 500 MB each) and give up
      root once the interface is open
  exflow live -i eth1 --format json -o report.json --exchange 198.51.100.10
      records on standard output, the JSON report to a file; say who is who as for analyze

Streaming records (NDJSON, field names as in the JSON report):
  {\"record\":\"handoff\", ...}         an endpoint-mapper hand-off, as the final report will have it:
                                    at once when its follow-up connection is up (followed: true),
                                    else once every attempt in its window has surely ended
  {\"record\":\"attempt-failed\", ...}  a connection attempt the verdicts judge failed (blocked or
                                    refused, with the report's evidence), when its flow ends
  {\"record\":\"finding\", ...}         an endpoint mapper answered 'not registered'
  {\"record\":\"scan\", ...}            a port scan, sweep or flood shows (its probes are not failed
                                    attempts: they wait 60 s for their scan before being written)
  {\"record\":\"stats\", ...}           every --stats-interval (default 60 s) and once at the stop:
                                    ts, interface, interface_up, packets, bytes, kernel_drops,
                                    interface_drops (totals since the start), flows_tracked,
                                    records_written, records_lost (so loss is seen as it happens;
                                    the final report's stats record has a \"schema\" field)

Permissions: capturing needs root, or the CAP_NET_RAW and CAP_NET_ADMIN capabilities
  (setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/exflow).
Outputs: by default the streaming records and then, at the stop, the report both go to standard
  output; --events FILE and -o FILE separate them.
  --events FILE  appended to, never emptied (a restart loses nothing); reopened on SIGHUP
                 (logrotate moves it, then signals): records after the signal go to a new FILE
                 (appended to if FILE was not moved); never half a record in either.
  -o FILE        opened at the start (a bad path fails at once; the previous report stays until
                 this one replaces it), written once, at the stop, to FILE (created anew if it was
                 moved or deleted meanwhile); SIGHUP changes nothing.
  -w FILE        rotated by exflow itself (--rotate-size: FILE.1, FILE.2, ...; keep logrotate away
                 from them); SIGHUP changes nothing.
  A full disk: the output that failed is named once on stderr, -w stops (its file ends with the
  last whole packet), --events drops records until a SIGHUP reopens it (e.g. after making room;
  counted in records_lost); capture and report go on, and the exit code is 3.
Signals: SIGINT or SIGTERM stops capturing, drains the pipeline, writes the final report (the same
  report `exflow analyze` gives for the same packets) and exits; a second signal exits at once
  (status 130). SIGHUP reopens --events FILE. If the outputs cannot be written within
  --stop-timeout of the stop (a reader that stopped reading), exflow says what it was waiting for
  and exits 4.
The interface: if it is taken down or loses its carrier, exflow says so on stderr and goes on
  (capture resumes when it is up again); if it disappears, the capture stops there and the report
  of what was captured is written. Either way the report's input says what happened.
Exit codes: 0 stopped and everything written; 3 partial: the interface was down a while or
  disappeared, or --events or -w could not be written (the report covers what was captured);
  2 could not start (or could not write the report); 4 outputs not written within --stop-timeout;
  130 a second signal.
A status line (packets/s, kernel and interface drops, flows tracked, problems) is drawn on stderr
  every 2 seconds when stderr is a terminal.";

#[derive(Args)]
struct LiveArgs {
    /// Network interface to capture on (see --list-interfaces)
    #[arg(
        short,
        long,
        value_name = "IFACE",
        required_unless_present = "list_interfaces"
    )]
    interface: Option<String>,

    /// List the interfaces that can be captured on, and exit
    #[arg(long)]
    list_interfaces: bool,

    /// Only capture packets matching this BPF filter (tcpdump syntax), compiled by the kernel;
    /// keep the dynamic RPC ports in it (hand-offs whose follow-up it drops are not-captured)
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,

    /// Bytes captured per packet at most (DCE/RPC needs whole packets)
    #[arg(long, value_name = "N", default_value_t = 262_144,
          value_parser = clap::value_parser!(u32).range(64..=262_144))]
    snaplen: u32,

    /// Do not put the interface in promiscuous mode
    #[arg(long)]
    no_promisc: bool,

    /// Kernel capture buffer in MB; raise it if kernel drops appear
    #[arg(long, value_name = "MB", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    buffer_size: u32,

    /// Stop after this long: seconds, or a number with s, m, h or d (e.g. 90, 10m, 8h)
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<std::time::Duration>,

    /// Stop after this many packets (that passed the filter)
    #[arg(short = 'c', long, value_name = "N")]
    count: Option<u64>,

    /// Append the streaming records to this file (- for standard output, the default); it is
    /// never emptied, so a restart loses nothing, and SIGHUP reopens it (for logrotate)
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,

    /// Write a stats record (packets, drops, flows tracked, records written) to the streaming
    /// records this often, and once at the stop: seconds, or a number with s, m, h or d; 0: never
    #[arg(long, value_name = "D", value_parser = parse_interval, default_value = "60s")]
    stats_interval: std::time::Duration,

    /// Also write the captured packets to this pcap file, rotated by --rotate-size (not by
    /// SIGHUP)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<PathBuf>,

    /// Start a new -w file (FILE.1, FILE.2, ...) when the current one would exceed this (MB;
    /// 0: never)
    #[arg(long, value_name = "MB", default_value_t = 100, requires = "write")]
    rotate_size: u64,

    /// Most ended flows kept for the final report (memory stays flat over days). Beyond it,
    /// working flows whose client, server and port already have one kept are let go (and
    /// counted in stats.flows_not_retained); failed attempts and parsed protocols are kept
    /// first. 0: keep all (the report then equals `exflow analyze` exactly, memory grows)
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    retain_flows: usize,

    /// Also write the baseline of what was captured to FILE when the capture stops
    /// (as `exflow baseline` does for files; merge it with others by `exflow baseline merge`)
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,

    /// Drop root privileges to this user once the interface is open (as tcpdump -Z);
    /// -o, --events and -w files are then created as that user
    #[arg(long, value_name = "NAME")]
    user: Option<String>,

    /// Never draw the status line
    #[arg(long)]
    no_status: bool,

    /// Once the capture stops, how long writing the records, the report and the baseline may
    /// take; past it exflow says what it was waiting for and exits 4 rather than hang
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "60s")]
    stop_timeout: std::time::Duration,

    #[command(flatten)]
    analysis: AnalysisArgs,
}

/// A duration as [`parse_duration`] takes it, or 0 (`0`, `0s`, ...) for never.
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let num = s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if num.parse::<f64>() == Ok(0.0) {
        return Ok(std::time::Duration::ZERO);
    }
    parse_duration(s)
}

/// `90`, `90s`, `10m`, `8h`, `2d`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 90, 90s, 10m, 8h, 2d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use s, m, h or d)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("'{s}' must be a positive duration"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

const ANALYZE_EXAMPLES: &str = "Examples:
  exflow analyze pcaps/dyn-drop-client.pcap
      text summary: inputs, failed connection attempts, flows by service and port
  exflow analyze --format json -o report.json captures/
      every capture in a directory, merged by timestamp, as the JSON report
  tcpdump -i eth0 -w - | exflow analyze -
      read a capture from standard input (a filter given to tcpdump is unknown to exflow:
      one that drops the dynamic RPC ports makes their hand-offs look blocked)
  exflow analyze --filter 'host 198.51.100.10 and tcp' day1.pcapng day2.pcapng
      a BPF filter (tcpdump syntax) applied to the files
  exflow analyze --exchange 198.51.100.10 --clients 192.0.2.0/24 site.pcap
      say who is who: UDP from the Exchange server to client ports is labeled as
      new-mail notifications
  exflow analyze --policy policy.json site.pcap
      compare what was seen with the expected firewall policy (exflow policy --help)
  exflow analyze --exchange-version 2003 site.pcap
      registry advice for Exchange 2000/2003 only (the directory's NSPI port is
      MSExchangeSA \"TCP/IP NSPI Port\" there, MSExchangeDS \"TCP/IP port\" on 5.5);
      without it, every covered version's value is given, each labelled
  exflow analyze --inside client-side.pcap --outside server-side.pcap
      two taps, one on each side of the firewall: what vanished between them is
      what the firewall dropped (clocks are aligned by the packets both saw)

Exit codes: 0 analyzed, nothing to act on (scans, sweeps, floods, never-seen rules and what the \
capture cannot tell do not count); 1 findings to act on (blocked, refused by the host, not in \
policy, not registered); 2 could not analyze; 3 partial (an input was corrupt or truncated; the \
report covers what was read).";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A readable summary
    Text,
    /// One JSON object (schema exflow.report/1)
    Json,
    /// One JSON record per line, for log shippers
    Ndjson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Reader {
    /// exflow's own zero-copy pcap/pcapng reader (fast, exact error offsets);
    /// regular files are mapped into memory
    Native,
    /// the native reader through read() into buffers, never mapping a file:
    /// for a file another program may truncate while exflow reads it
    Read,
    /// libpcap, through the pcap crate (for cross-checking)
    Libpcap,
}

/// Options shared by `analyze` and `live`: the analysis itself and its report.
#[derive(Args)]
struct AnalysisArgs {
    /// The expected firewall policy (JSON; `exflow policy init` writes a starter).
    /// Without one, verdicts still say what works and what is blocked.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Write the report to this file instead of standard output (- for standard output)
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,

    /// Shard worker threads [default: available cores]. The report is identical for every value.
    #[arg(short = 't', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Idle timeout (seconds) for TCP connections whose handshake never completed
    #[arg(long, value_name = "SECS", default_value_t = 75)]
    tcp_handshake_timeout: u64,

    /// Idle timeout (seconds) for established TCP connections
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    tcp_idle_timeout: u64,

    /// Idle timeout (seconds) for UDP conversations
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    udp_timeout: u64,

    /// Most flows tracked at once; beyond it the least recently active are evicted (and counted)
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    max_flows: usize,

    /// How long (seconds) after an endpoint-mapper answer the client's connection to the
    /// announced port may start and still count as its follow-up
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    handoff_window: u64,

    /// Exchange servers (addresses or CIDR networks, comma-separated): UDP they send from a
    /// port > 1024 to a client port > 1024 is taken for MAPI new-mail notifications
    #[arg(long, value_name = "IP[,IP...]", value_delimiter = ',')]
    exchange: Vec<Cidr>,

    /// Domain controllers / global catalogs (addresses or CIDR networks, comma-separated)
    #[arg(long, value_name = "IP[,IP...]", value_delimiter = ',')]
    dc: Vec<Cidr>,

    /// Client networks (CIDR, comma-separated): notifications are only looked for towards them
    #[arg(long, value_name = "CIDR[,CIDR...]", value_delimiter = ',')]
    clients: Vec<Cidr>,

    #[command(flatten)]
    version: ExchangeVersionArg,

    /// Do not parse DCE/RPC (no hand-offs, endpoints or interface labels; a little faster)
    #[arg(long)]
    no_dcerpc: bool,
}

/// `--exchange-version`: which registry values pin a port depends on it.
#[derive(Args, Clone, Copy, Default)]
struct ExchangeVersionArg {
    /// The Exchange servers' version: 5.5 (4.0 and 5.0 too), 2000, 2003 or 2007. The registry
    /// value that pins a port depends on it (the directory's NSPI: 5.5 MSExchangeDS, 2000-2007
    /// MSExchangeSA "TCP/IP NSPI Port"); without it, a policy's profiles decide, else every
    /// version's value is given, each labelled. Later versions are not covered by the articles.
    #[arg(long = "exchange-version", value_name = "VERSION", value_parser = parse_exchange_version)]
    exchange_version: Option<exflow::kb::ExchangeVersion>,
}

fn parse_exchange_version(s: &str) -> Result<exflow::kb::ExchangeVersion, String> {
    exflow::kb::ExchangeVersion::parse(s)
}

impl AnalysisArgs {
    /// Loads `--policy` (exit code 2 on error, after saying why).
    fn load_policy(&self) -> Result<Option<Arc<Policy>>, u8> {
        match &self.policy {
            Some(path) => match Policy::load(path) {
                Ok(p) => Ok(Some(Arc::new(p))),
                Err(e) => {
                    eprintln!("exflow: error: {e}");
                    Err(exit::ERROR)
                }
            },
            None => Ok(None),
        }
    }

    /// The pipeline options these arguments ask for (the policy's groups
    /// add to --exchange, --dc and --clients).
    fn options(&self, policy: Option<Arc<Policy>>) -> Options {
        let mut roles = Roles {
            exchange: self.exchange.clone(),
            dcs: self.dc.clone(),
            clients: self.clients.clone(),
            exchange_version: self.version.exchange_version,
        };
        if let Some(p) = &policy {
            let from_policy = p.roles();
            roles.exchange.extend(from_policy.exchange);
            roles.dcs.extend(from_policy.dcs);
            roles.clients.extend(from_policy.clients);
            // The command line wins over what the profiles imply.
            roles.exchange_version = roles.exchange_version.or(from_policy.exchange_version);
        }
        Options {
            threads: self
                .threads
                .map(usize::from)
                .unwrap_or_else(|| Options::default().threads),
            flow: FlowConfig {
                tcp_handshake_timeout: self.tcp_handshake_timeout.saturating_mul(SECOND),
                tcp_established_timeout: self.tcp_idle_timeout.saturating_mul(SECOND),
                udp_timeout: self.udp_timeout.saturating_mul(SECOND),
                max_flows_per_shard: self.max_flows.div_ceil(LOGICAL_SHARDS).max(1),
                dcerpc: !self.no_dcerpc,
                ..FlowConfig::default()
            },
            correlate: CorrelateConfig {
                handoff_window: self.handoff_window.saturating_mul(SECOND),
                roles,
                ..CorrelateConfig::default()
            },
            progress: false,
            policy,
            stream: None,
            retain_flows: None,
        }
    }

    /// Where the report goes: `-o FILE` or standard output.
    fn report_writer(&self) -> Result<Box<dyn Write>, String> {
        Ok(match output_file(self.output.as_deref()) {
            Some(path) => match File::create(path) {
                Ok(f) => Box::new(BufWriter::with_capacity(1 << 20, f)),
                Err(e) => return Err(format!("{}: cannot create: {e}", path.display())),
            },
            None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
        })
    }
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Capture files (pcap or pcapng), directories of captures, or - for standard input.
    /// Several inputs are merged by timestamp.
    #[arg(value_name = "FILE", required_unless_present_any = ["inside", "outside"])]
    inputs: Vec<String>,

    /// Two-tap analysis: captures taken on the inside (client side) of the firewall
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "outside", conflicts_with = "inputs")]
    inside: Vec<String>,

    /// Two-tap analysis: captures taken on the outside (server side) of the firewall
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "inside")]
    outside: Vec<String>,

    #[command(flatten)]
    analysis: AnalysisArgs,

    /// Only analyze packets matching this BPF filter (tcpdump syntax), e.g. 'tcp port 135 or
    /// tcp portrange 1024-65535'; hand-offs whose follow-up it drops are not-captured
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,

    /// How capture files are read
    #[arg(long, value_enum, default_value_t = Reader::Native)]
    reader: Reader,

    /// Never draw the progress line (it is drawn only when stderr is a terminal)
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze(args) => ExitCode::from(analyze(*args)),
        Command::Policy(cmd) => ExitCode::from(policy_command(cmd)),
        Command::Live(args) => ExitCode::from(live(*args)),
        Command::Baseline(args) => ExitCode::from(baseline_command(*args)),
        Command::Diff(args) => ExitCode::from(diff_command(*args)),
        Command::Rules(args) => ExitCode::from(rules_command(args)),
    }
}

fn policy_command(cmd: PolicyCommand) -> u8 {
    match cmd {
        PolicyCommand::Profiles => {
            for p in exflow::policy::profiles::PROFILES {
                println!("{:<28} {}", p.name, p.description);
            }
            exit::CLEAN
        }
        PolicyCommand::Check { file, version } => match Policy::load(&file) {
            Ok(p) => {
                print!("{}", p.describe_for(version.exchange_version));
                println!("{}: valid", file.display());
                exit::CLEAN
            }
            Err(e) => {
                eprintln!("exflow: error: {e}");
                exit::ERROR
            }
        },
        PolicyCommand::FromBaseline {
            baseline,
            output,
            force,
            version,
        } => policy_from_baseline(
            &baseline,
            output.as_deref(),
            force,
            version.exchange_version,
        ),
        PolicyCommand::Init {
            profiles,
            output,
            force,
        } => {
            for name in &profiles {
                if exflow::policy::profiles::lookup(name).is_none() {
                    let known: Vec<&str> = exflow::policy::profiles::PROFILES
                        .iter()
                        .map(|p| p.name)
                        .collect();
                    eprintln!(
                        "exflow: error: --profile {name}: no such built-in profile (known: {})",
                        known.join(", ")
                    );
                    return exit::ERROR;
                }
            }
            let names: Vec<&str> = profiles.iter().map(String::as_str).collect();
            let text = Policy::starter_json(&names);
            match output_file(output.as_deref()) {
                None => {
                    print!("{text}");
                    exit::CLEAN
                }
                Some(path) => {
                    if path.exists() && !force {
                        eprintln!(
                            "exflow: error: {}: already exists (use --force to overwrite)",
                            path.display()
                        );
                        return exit::ERROR;
                    }
                    match std::fs::write(path, text) {
                        Ok(()) => {
                            eprintln!(
                                "exflow: wrote {}: edit the groups' addresses, then run `exflow policy check {}`",
                                path.display(),
                                path.display()
                            );
                            exit::CLEAN
                        }
                        Err(e) => {
                            eprintln!("exflow: error: {}: cannot write: {e}", path.display());
                            exit::ERROR
                        }
                    }
                }
            }
        }
    }
}

/// Opens capture inputs with the chosen reader.
fn open_source(
    inputs: &[String],
    filter: Option<&str>,
    reader: Reader,
) -> Result<Box<dyn Source>, String> {
    let opened: Result<(Box<dyn Source>, Vec<String>), String> = match reader {
        Reader::Native => capture::FileSource::open(inputs, filter)
            .map(|(s, w)| (Box::new(s) as Box<dyn Source>, w))
            .map_err(|e| e.to_string()),
        Reader::Read => {
            let options = capture::ReaderOptions {
                map_window: None,
                ..capture::ReaderOptions::default()
            };
            capture::FileSource::open_with(inputs, filter, &options)
                .map(|(s, w)| (Box::new(s) as Box<dyn Source>, w))
                .map_err(|e| e.to_string())
        }
        Reader::Libpcap => capture::LibpcapSource::open(inputs, filter)
            .map(|(s, w)| (Box::new(s) as Box<dyn Source>, w))
            .map_err(|e| e.to_string()),
    };
    let (source, warnings) = opened?;
    for w in warnings {
        eprintln!("exflow: warning: {w}");
    }
    Ok(source)
}

fn analyze(args: AnalyzeArgs) -> u8 {
    let filter = args.filter.as_deref();
    let policy = match args.analysis.load_policy() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let two_taps = !args.inside.is_empty();
    let sources = if two_taps {
        open_source(&args.inside, filter, args.reader)
            .and_then(|a| open_source(&args.outside, filter, args.reader).map(|b| (a, Some(b))))
    } else {
        open_source(&args.inputs, filter, args.reader).map(|a| (a, None))
    };
    let (source, outside) = match sources {
        Ok(x) => x,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            return exit::ERROR;
        }
    };

    let mut out = match args.analysis.report_writer() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            return exit::ERROR;
        }
    };

    let opts = Options {
        progress: !args.no_progress,
        ..args.analysis.options(policy)
    };
    let analysis = match outside {
        None => analysis::run(source, &opts),
        Some(outside) => {
            let inside = pipeline::collect(source, &opts);
            let outside = pipeline::collect(outside, &opts);
            let (joined, taps) = exflow::taps::join(inside, outside);
            analysis::finish(joined, &opts, Some(taps))
        }
    };

    for input in &analysis.inputs {
        if let Some(p) = &input.problem {
            eprintln!(
                "exflow: warning: {}: {} (the report covers the {} packets read before it)",
                input.path, p.message, input.packets
            );
        }
    }

    if let Err(e) = render(&analysis, args.analysis.format, &mut out).and_then(|_| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("exflow: error: writing the report: {e}");
            return exit::ERROR;
        }
    }
    let code = if analysis.is_partial() {
        exit::PARTIAL
    } else if analysis.has_findings() {
        exit::FINDINGS
    } else {
        exit::CLEAN
    };
    // Everything is written: skip freeing a large analysis piece by piece.
    std::mem::forget(analysis);
    code
}

fn render(a: &Analysis, format: Format, out: &mut dyn Write) -> io::Result<()> {
    let started = Instant::now();
    let rendered = match format {
        Format::Text => report::write_text(a, out),
        Format::Json => report::write_json(a, out),
        Format::Ndjson => report::write_ndjson(a, out),
    };
    if std::env::var_os("EXFLOW_TIMING").is_some() {
        eprintln!("timing: rendered in {:?}", started.elapsed());
    }
    rendered
}

/// `exflow live`: capture on an interface through the offline pipeline,
/// streaming records meanwhile; on a stop, the same report as `analyze`.
fn live(args: LiveArgs) -> u8 {
    if args.list_interfaces {
        return list_interfaces();
    }
    let Some(interface) = args.interface.clone() else {
        eprintln!("exflow: error: --interface is required (see exflow live --list-interfaces)");
        return exit::ERROR;
    };
    let policy = match args.analysis.load_policy() {
        Ok(p) => p,
        Err(code) => return code,
    };

    // First signal: stop and write the report. Second: exit at once. The
    // conditional exit is registered first, so it only fires once the flag
    // is already set.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        let registered = signal_hook::flag::register_conditional_shutdown(
            sig,
            exit::INTERRUPTED.into(),
            Arc::clone(&stop),
        )
        .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)));
        if let Err(e) = registered {
            eprintln!("exflow: error: cannot handle signals: {e}");
            return exit::ERROR;
        }
    }
    // SIGHUP (logrotate): reopen --events at its next record boundary.
    let hup = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(SIGHUP, Arc::clone(&hup)) {
        eprintln!("exflow: error: cannot handle signals: {e}");
        return exit::ERROR;
    }
    let notice: Notice = Arc::new(|m: &str| eprintln!("exflow: {m}"));

    let config = capture::LiveConfig {
        interface: interface.clone(),
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_bytes: Some(args.buffer_size.saturating_mul(1 << 20)),
        count: args.count,
        duration: args.duration,
    };
    let mut source = match capture::LiveSource::open(config, Arc::clone(&stop)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            return exit::ERROR;
        }
    };
    source.on_notice(Arc::clone(&notice));
    if let Some(user) = &args.user {
        if let Err(e) = drop_privileges(user) {
            eprintln!("exflow: error: --user {user}: {e}");
            return exit::ERROR;
        }
    }
    if let Some(path) = &args.write {
        if let Err(e) = source.write_to(path, args.rotate_size.saturating_mul(1 << 20)) {
            eprintln!("exflow: error: -w {e}");
            return exit::ERROR;
        }
    }
    let events = match output_file(args.events.as_deref()) {
        Some(p) => match EventsOutput::open(p, Arc::clone(&hup), Arc::clone(&notice)) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("exflow: error: {}: cannot create: {e}", p.display());
                return exit::ERROR;
            }
        },
        _ => EventsOutput::stdout(Arc::clone(&hup), Arc::clone(&notice)),
    };
    // A report file is created now, so a path that cannot be written fails
    // before the capture. Standard output is taken only once the streaming
    // records are all written: they go there too by default, and the report
    // holding it from the start stalled them, then the workers, then the stop.
    let mut report_file = match output_file(args.analysis.output.as_deref()) {
        Some(p) => match ReportFile::create(p) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("exflow: error: {}: cannot create: {e}", p.display());
                return exit::ERROR;
            }
        },
        None => None,
    };

    let (tx, rx) = crossbeam_channel::bounded::<pipeline::StreamMsg>(1024);
    let mut opts = Options {
        stream: Some(tx),
        retain_flows: (args.retain_flows > 0).then_some(args.retain_flows),
        ..args.analysis.options(policy)
    };
    // The streamed hand-offs know what --filter drops, as the report does.
    opts.correlate.filters = capture::applied_filters(&source.inputs());
    let correlator =
        exflow::stream::LiveCorrelator::new(&opts.flow, &opts.correlate, events.clone());
    let stream_counters = correlator.counters();
    let counters = source.counters();
    let stream_thread = {
        let stats = StatsRecord {
            interface: interface.clone(),
            capture: Arc::clone(&counters),
            stream: Arc::clone(&stream_counters),
            events: events.clone(),
        };
        let every = args.stats_interval;
        std::thread::Builder::new()
            .name("exflow-stream".into())
            .spawn(move || stream_records(correlator, &rx, &stats, every))
    };
    let stream_thread = match stream_thread {
        Ok(t) => t,
        Err(e) => {
            eprintln!("exflow: error: cannot start the stream thread: {e}");
            return exit::ERROR;
        }
    };
    let capturing = Arc::new(AtomicBool::new(true));
    let status = (!args.no_status && io::stderr().is_terminal()).then(|| {
        let (counters, stream, capturing) = (
            Arc::clone(&counters),
            Arc::clone(&stream_counters),
            Arc::clone(&capturing),
        );
        let name = interface.clone();
        std::thread::spawn(move || status_line(&name, &counters, &stream, &capturing))
    });
    eprintln!(
        "exflow: capturing on {interface} ({}); Ctrl-C or SIGTERM writes the report",
        source.link()
    );

    let phase = Arc::new(AtomicU8::new(StopPhase::Pipeline as u8));
    stop_deadline(Arc::clone(&stop), Arc::clone(&phase), args.stop_timeout);

    let analysis = analysis::run(Box::new(source), &opts);
    // The workers are done: closing the stream lets the correlator decide
    // what is still pending and finish.
    opts.stream = None;
    capturing.store(false, Ordering::Relaxed);
    if let Some(t) = status {
        let _ = t.join();
    }
    phase.store(StopPhase::Records as u8, Ordering::Relaxed);
    let mut code = exit::CLEAN;
    match stream_thread.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Ok(Err(e)) => {
            eprintln!("exflow: error: writing the streaming records: {e}");
            code = exit::PARTIAL;
        }
        Err(_) => {
            eprintln!("exflow: error: the stream thread failed");
            code = exit::ERROR;
        }
    }
    // Failed outputs were named on stderr when they failed.
    if events.incomplete() || counters.write_failed.load(Ordering::Relaxed) {
        code = code.max(exit::PARTIAL);
    }
    eprintln!(
        "exflow: {} packets captured on {interface}; dropped by the kernel: {}, by the interface: {}",
        counters.packets.load(Ordering::Relaxed),
        counters.kernel_drops.load(Ordering::Relaxed),
        counters.if_drops.load(Ordering::Relaxed),
    );
    for input in &analysis.inputs {
        if let Some(p) = &input.problem {
            eprintln!(
                "exflow: error: {}: {}; the report covers the {} packets captured",
                input.path, p.message, input.packets
            );
            code = code.max(exit::PARTIAL);
        }
    }
    phase.store(StopPhase::Report as u8, Ordering::Relaxed);
    let mut out: Box<dyn Write> = match report_file.take() {
        Some(r) => {
            let (file, note) = r.reopen_at_stop();
            if let Some(n) = note {
                notice(&n);
            }
            Box::new(BufWriter::with_capacity(1 << 20, file))
        }
        None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    };
    if let Err(e) = render(&analysis, args.analysis.format, &mut out).and_then(|_| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("exflow: error: writing the report: {e}");
            return exit::ERROR;
        }
    }
    phase.store(StopPhase::Baseline as u8, Ordering::Relaxed);
    if let Some(path) = &args.baseline {
        let b = exflow::baseline::from_analysis(&analysis, opts.policy.as_deref());
        let written = File::create(path).and_then(|f| {
            let mut w = BufWriter::new(f);
            b.write_json(&mut w)?;
            w.flush()
        });
        if let Err(e) = written {
            eprintln!(
                "exflow: error: {}: cannot write the baseline: {e}",
                path.display()
            );
            return exit::ERROR;
        }
    }
    code
}

/// What the periodic `stats` record of `exflow live` reads.
struct StatsRecord {
    interface: String,
    capture: Arc<capture::LiveCounters>,
    stream: Arc<exflow::stream::StreamCounters>,
    events: EventsOutput,
}

impl StatsRecord {
    fn json(&self) -> serde_json::Value {
        let c = &self.capture;
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        serde_json::json!({
            "ts": exflow::time::rfc3339_micros(wall),
            "interface": self.interface,
            "interface_up": !c.link_down.load(Ordering::Relaxed),
            "packets": c.packets.load(Ordering::Relaxed),
            "bytes": c.bytes.load(Ordering::Relaxed),
            "kernel_drops": c.kernel_drops.load(Ordering::Relaxed),
            "interface_drops": c.if_drops.load(Ordering::Relaxed),
            "flows_tracked": self.stream.tracked.load(Ordering::Relaxed),
            "records_written": self.events.written(),
            "records_lost": self.events.lost(),
            "scan_probes_untracked": self.stream.scan_probes_untracked.load(Ordering::Relaxed),
            "probes_not_held": self.stream.probes_not_held.load(Ordering::Relaxed),
        })
    }
}

/// The stream thread of `exflow live`: feeds the workers' messages to the
/// live correlator until the pipeline is done; meanwhile writes a `stats`
/// record every `every` (never when zero; once more at the end) and, while
/// the link is quiet, reopens --events when a SIGHUP asked for it.
fn stream_records(
    mut c: exflow::stream::LiveCorrelator<EventsOutput>,
    rx: &crossbeam_channel::Receiver<pipeline::StreamMsg>,
    stats: &StatsRecord,
    every: Duration,
) -> io::Result<()> {
    use crossbeam_channel::RecvTimeoutError;
    /// A SIGHUP is acted on within this even when no record is written.
    const TICK: Duration = Duration::from_millis(200);
    let mut next = (!every.is_zero()).then(|| Instant::now() + every);
    loop {
        let wait = next.map_or(TICK, |t| {
            t.saturating_duration_since(Instant::now()).min(TICK)
        });
        match rx.recv_timeout(wait) {
            Ok(msg) => c.push(msg),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        stats.events.reopen_if_requested();
        if let Some(t) = next {
            let now = Instant::now();
            if now >= t {
                c.write_record("stats", stats.json());
                // Late (a slow output): the next one a whole interval on.
                next = Some(if t + every > now {
                    t + every
                } else {
                    now + every
                });
            }
        }
    }
    if next.is_some() {
        c.write_record("stats", stats.json());
    }
    c.finish().map(|_| ())
}

/// What `exflow live` is doing once the capture has stopped, for the stop
/// deadline's message.
#[derive(Clone, Copy)]
#[repr(u8)]
enum StopPhase {
    Pipeline,
    Records,
    Report,
    Baseline,
}

impl StopPhase {
    fn from_u8(v: u8) -> StopPhase {
        match v {
            0 => StopPhase::Pipeline,
            1 => StopPhase::Records,
            2 => StopPhase::Report,
            _ => StopPhase::Baseline,
        }
    }

    fn waiting_for(self) -> &'static str {
        match self {
            StopPhase::Pipeline => {
                "the shard workers to finish the packets already captured \
                 (or the streaming records' output to take more)"
            }
            StopPhase::Records => {
                "the last streaming records to be written (is their reader stuck?)"
            }
            StopPhase::Report => "the report to be written (is its reader stuck?)",
            StopPhase::Baseline => "the --baseline file to be written",
        }
    }
}

/// Once the stop has begun (a signal, `--duration`, `--count`: all set
/// `stop`), `exflow live` has `timeout` to write its outputs; past it, it
/// says what it was still waiting for and exits with [`exit::STUCK`]
/// rather than hang.
fn stop_deadline(stop: Arc<AtomicBool>, phase: Arc<AtomicU8>, timeout: std::time::Duration) {
    let watch = move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(timeout);
        let waiting = StopPhase::from_u8(phase.load(Ordering::Relaxed)).waiting_for();
        eprintln!(
            "exflow: error: the capture stopped {} s ago and exflow is still waiting for \
             {waiting}; exiting without it (see --stop-timeout)",
            timeout.as_secs()
        );
        std::process::exit(exit::STUCK.into());
    };
    // Without the thread there is no deadline, but the capture still works.
    if let Err(e) = std::thread::Builder::new()
        .name("exflow-deadline".into())
        .spawn(watch)
    {
        eprintln!("exflow: warning: no stop deadline (cannot start its thread: {e})");
    }
}

fn list_interfaces() -> u8 {
    match capture::list_interfaces() {
        Ok(list) => {
            for i in list {
                let addrs: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
                println!(
                    "{}\t{}{}\t{}\t{}",
                    i.name,
                    if i.up { "up" } else { "down" },
                    if i.loopback { ",loopback" } else { "" },
                    if addrs.is_empty() {
                        "-".into()
                    } else {
                        addrs.join(",")
                    },
                    i.description.unwrap_or_default()
                );
            }
            exit::CLEAN
        }
        Err(e) => {
            eprintln!("exflow: error: listing interfaces: {e}");
            exit::ERROR
        }
    }
}

/// Redraws the status line every 2 seconds until capture ends.
fn status_line(
    interface: &str,
    c: &capture::LiveCounters,
    s: &exflow::stream::StreamCounters,
    capturing: &AtomicBool,
) {
    const EVERY: Duration = Duration::from_secs(2);
    let mut last = (Instant::now(), c.packets.load(Ordering::Relaxed));
    let mut next = Instant::now() + EVERY;
    while capturing.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() < next {
            continue;
        }
        next += EVERY;
        let packets = c.packets.load(Ordering::Relaxed);
        let rate = (packets - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), packets);
        eprint!(
            "\r\x1b[Kexflow live {interface}: {rate:.0} pkt/s, {packets} packets, kernel drops {}, \
             interface drops {}, {} flows tracked, {} problems",
            c.kernel_drops.load(Ordering::Relaxed),
            c.if_drops.load(Ordering::Relaxed),
            s.tracked.load(Ordering::Relaxed),
            s.problems.load(Ordering::Relaxed),
        );
    }
    eprintln!();
}

/// Becomes `user` (its uid, gid and groups), as tcpdump -Z does, once the
/// capture is open; checks that root cannot be regained.
fn drop_privileges(user: &str) -> Result<(), String> {
    let name = std::ffi::CString::new(user).map_err(|_| "invalid user name".to_string())?;
    // SAFETY: getpwnam returns NULL or a pointer to static storage, read
    // at once, before any other call that could overwrite it.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(format!("no such user '{user}'"));
    }
    // SAFETY: pw is non-null (checked above).
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    let os = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    // SAFETY: plain system calls with valid arguments; no threads hold
    // privileges we rely on (glibc applies set*id to every thread).
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            return Err(os("initgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(os("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(os("setuid"));
        }
        if uid != 0 && libc::setuid(0) == 0 {
            return Err("root could be regained after setuid".into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Baselines, diffs, rules (issue #6). Kept apart from `analyze` on purpose.

const BASELINE_EXAMPLES: &str = "Examples:
  exflow baseline day1.pcapng day2.pcapng -o site-a.json
      every observed (client group, server, service, proto, port) with connections,
      bytes, first/last seen, successes and failures; dynamic RPC ports per interface
  exflow baseline --policy policy.json -o site-a.json captures/
      client groups named by the policy's groups instead of /24 (/64) networks
  exflow baseline merge site-a.json site-b.json monday.json -o all.json
      combine baselines of several sensors or days (any order gives the same file)
  exflow diff all.json today.pcap
      what changed since (exflow diff --help)
  exflow rules all.json --format nftables -o exflow.nft
      the firewall rules for what worked (exflow rules --help)

Exit codes: 0 written; 2 could not (bad arguments, unreadable input, a file that is not
a baseline: the message names it); 3 partial (an input was corrupt or truncated).";

const DIFF_EXAMPLES: &str = "Examples:
  exflow diff before.json after.json
      new flows, vanished flows, failure rates that changed, new dynamic RPC ports
  exflow diff baseline.json today.pcapng --format json
      a capture on either side is analyzed first (detected by content: pcap/pcapng
      magic vs JSON)
  exflow diff allow-all.pcap firewalled.pcap
      what the new firewall broke: the blocked flows show as failure-rate changes

A failure rate is failures / (successes + failures) per entry; changes of at least 20
percentage points, and any change from no failure to some (or back), are reported.
Exit codes: 0 no differences; 1 differences; 2 could not compare (bad input).";

const RULES_EXAMPLES: &str = "Examples:
  exflow rules baseline.json --format nftables -o exflow.nft && nft -c -f exflow.nft
      a complete nftables file (table inet exflow, forward chain, policy accept until
      you switch it to drop)
  exflow rules baseline.json --format iptables -o exflow.rules
      an iptables-restore file (IPv4; --format ip6tables for IPv6)
  exflow rules baseline.json --format netsh
      netsh advfirewall commands for the servers' own Windows firewall
  exflow rules baseline.json --format cisco-asa --dynamic observed
      ASA object groups and access list; dynamic RPC ports allowed as observed
  exflow rules baseline.json --exchange-version 2003
      the PIN: lines name Exchange 2000/2003's registry values only

The input is a baseline (exflow baseline CAPTURES -o baseline.json): given a capture,
exflow rules says so and stops. Only successful traffic of the KB's Exchange/AD services
becomes a rule; sources are grouped into network sets and adjacent ports merged into
ranges; each rule is commented with its service. Dynamic RPC ports: by default
(--dynamic pin) no rule is written for them, but a PIN: line per interface names the
registry value that pins its port, what to restart and how to choose the port
(KB270836, KB224196, Q155831, ...), or, where no value is documented, how to restrict
the server's dynamic range (KB154596; netsh on Windows Server 2008 and later,
KB929851) — the same values `exflow policy from-baseline` pins. --dynamic observed
allows the ports each interface was seen on instead, never the range between them.
New-mail notifications are allowed from ports > 1024 to ports > 1024 (Q264035), not
on the port one client used once. The output's header says which.";

#[derive(Subcommand)]
enum BaselineCommand {
    /// Merge baselines (any order gives the same bytes)
    #[command(
        after_help = "Example:\n  exflow baseline merge site-a.json site-b.json -o all.json\n\nExit codes: 0 written; 2 a file is unreadable, not JSON or not a baseline (the message names it)."
    )]
    Merge {
        /// Baseline files
        #[arg(value_name = "BASELINE", required = true)]
        files: Vec<PathBuf>,
        /// Where to write the merged baseline (- for standard output, the default)
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
struct BaselineArgs {
    #[command(subcommand)]
    command: Option<BaselineCommand>,
    /// Capture files (pcap or pcapng), directories of captures, or - for standard input
    #[arg(value_name = "FILE", required = true)]
    inputs: Vec<String>,
    /// Where to write the baseline (- for standard output, the default)
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    #[command(flatten)]
    capture: CaptureArgs,
}

/// How captures are read by baseline and diff (a subset of analyze's options).
#[derive(Args, Clone)]
struct CaptureArgs {
    /// A policy file: its groups name the client groups (else /24, IPv6 /64)
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Shard worker threads [default: available cores]. The output is identical for every value.
    #[arg(short = 't', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Only read packets matching this BPF filter (tcpdump syntax)
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    /// A readable list
    Text,
    /// One JSON object (schema exflow.baseline-diff/1)
    Json,
}

#[derive(Args)]
struct DiffArgs {
    /// The old side: a baseline (JSON) or a capture (pcap/pcapng)
    #[arg(value_name = "OLD")]
    old: String,
    /// The new side: a baseline (JSON) or a capture (pcap/pcapng)
    #[arg(value_name = "NEW")]
    new: String,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
    /// Write the diff to this file instead of standard output (- for standard output)
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    #[command(flatten)]
    capture: CaptureArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RulesFormat {
    /// A complete nftables file (nft -f)
    Nftables,
    /// An iptables-restore file (IPv4)
    Iptables,
    /// An ip6tables-restore file (IPv6)
    Ip6tables,
    /// netsh advfirewall commands (Windows servers)
    Netsh,
    /// Cisco ASA object groups and access list
    CiscoAsa,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DynamicMode {
    /// Allow the ports each RPC interface was seen on (not the range between them)
    Observed,
    /// No rule for dynamic ports: say how to pin them (registry values)
    Pin,
}

#[derive(Args)]
struct RulesArgs {
    /// A baseline file (`exflow baseline`)
    #[arg(value_name = "BASELINE")]
    baseline: PathBuf,
    /// Rule format
    #[arg(short, long, value_enum, default_value_t = RulesFormat::Nftables)]
    format: RulesFormat,
    /// Dynamic RPC ports: recommend pinning them, or allow the observed ports
    #[arg(long, value_enum, default_value_t = DynamicMode::Pin)]
    dynamic: DynamicMode,
    /// Write the rules to this file instead of standard output (- for standard output)
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    #[command(flatten)]
    version: ExchangeVersionArg,
}

/// The file an `-o` option names, or `None` for standard output: no `-o`,
/// or `-o -` (as `-` means standard input for the captures).
fn output_file(output: Option<&std::path::Path>) -> Option<&std::path::Path> {
    output.filter(|p| p.as_os_str() != "-")
}

/// Writes `text` to `output` or standard output.
fn write_out(output: Option<&std::path::Path>, text: &str) -> u8 {
    let r = match output_file(output) {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("{}: cannot write: {e}", p.display()))
        }
        None => {
            let mut o = io::stdout().lock();
            match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Err(format!("writing standard output: {e}"))
                }
                _ => Ok(()),
            }
        }
    };
    match r {
        Ok(()) => exit::CLEAN,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            exit::ERROR
        }
    }
}

/// Runs the pipeline over captures for a baseline (same reading as analyze).
fn analyze_for_baseline(
    inputs: &[String],
    cap: &CaptureArgs,
) -> Result<(Analysis, Option<std::sync::Arc<Policy>>), String> {
    let policy = match &cap.policy {
        Some(p) => Some(std::sync::Arc::new(
            Policy::load(p).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let source = open_source(inputs, cap.filter.as_deref(), Reader::Native)?;
    let mut opts = Options {
        policy: policy.clone(),
        ..Options::default()
    };
    if let Some(t) = cap.threads {
        opts.threads = usize::from(t);
    }
    if let Some(p) = &policy {
        opts.correlate.roles = p.roles();
    }
    let analysis = analysis::run(source, &opts);
    for input in &analysis.inputs {
        if let Some(p) = &input.problem {
            eprintln!(
                "exflow: warning: {}: {} (the baseline covers the {} packets read before it)",
                input.path, p.message, input.packets
            );
        }
    }
    Ok((analysis, policy))
}

fn baseline_command(args: BaselineArgs) -> u8 {
    if let Some(BaselineCommand::Merge { files, output }) = args.command {
        let mut parts = Vec::new();
        for f in &files {
            match exflow::baseline::Baseline::load(f) {
                Ok(b) => parts.push(b),
                Err(e) => {
                    eprintln!("exflow: error: {e}");
                    return exit::ERROR;
                }
            }
        }
        let merged = exflow::baseline::Baseline::merge_all(parts);
        return write_out(output.as_deref(), &merged.to_json());
    }
    let (analysis, policy) = match analyze_for_baseline(&args.inputs, &args.capture) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            return exit::ERROR;
        }
    };
    let b = exflow::baseline::from_analysis(&analysis, policy.as_deref());
    let code = write_out(args.output.as_deref(), &b.to_json());
    if code == exit::CLEAN && analysis.is_partial() {
        exit::PARTIAL
    } else {
        code
    }
}

/// Whether a file starts like a pcap or pcapng capture.
fn looks_like_capture(path: &str) -> Result<bool, String> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = File::open(path).map_err(|e| format!("{path}: cannot open: {e}"))?;
    let n = f
        .read(&mut magic)
        .map_err(|e| format!("{path}: cannot read: {e}"))?;
    Ok(n == 4
        && matches!(
            u32::from_be_bytes(magic),
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0x0a0d_0d0a
        ))
}

/// A baseline from a baseline file or a capture, detected by content.
fn baseline_of(path: &str, cap: &CaptureArgs) -> Result<exflow::baseline::Baseline, String> {
    if std::path::Path::new(path).is_file() && !looks_like_capture(path)? {
        return exflow::baseline::Baseline::load(std::path::Path::new(path));
    }
    let (analysis, policy) = analyze_for_baseline(&[path.to_string()], cap)?;
    Ok(exflow::baseline::from_analysis(
        &analysis,
        policy.as_deref(),
    ))
}

fn diff_command(args: DiffArgs) -> u8 {
    let sides = baseline_of(&args.old, &args.capture)
        .and_then(|o| baseline_of(&args.new, &args.capture).map(|n| (o, n)));
    let (old, new) = match sides {
        Ok(x) => x,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            return exit::ERROR;
        }
    };
    let d = exflow::baseline::diff::diff(&old, &new, &args.old, &args.new);
    let text = match args.format {
        DiffFormat::Text => exflow::baseline::diff::to_text(&d),
        DiffFormat::Json => exflow::baseline::diff::to_json(&d),
    };
    match write_out(args.output.as_deref(), &text) {
        exit::CLEAN if d.is_empty() => exit::CLEAN,
        exit::CLEAN => exit::FINDINGS,
        code => code,
    }
}

/// A baseline file, or why not: a capture is named as one, with the
/// command that makes a baseline of it (rules and policies are written from
/// what worked over time, not from one capture read in passing).
fn load_baseline(
    path: &std::path::Path,
    command: &str,
) -> Result<exflow::baseline::Baseline, String> {
    let name = path.display().to_string();
    if path.is_file() && looks_like_capture(&name)? {
        return Err(format!(
            "{name} is a capture, not a baseline: run `exflow baseline {name} -o baseline.json` first (add more captures, or merge baselines of several days), then `exflow {command} baseline.json`"
        ));
    }
    exflow::baseline::Baseline::load(path)
}

fn rules_command(args: RulesArgs) -> u8 {
    use exflow::baseline::rules;
    let b = match load_baseline(&args.baseline, "rules") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            return exit::ERROR;
        }
    };
    let plan = rules::plan(
        &b,
        match args.dynamic {
            DynamicMode::Observed => rules::Dynamic::Observed,
            DynamicMode::Pin => rules::Dynamic::Pin,
        },
        args.version.exchange_version,
    );
    let format = match args.format {
        RulesFormat::Nftables => rules::Format::Nftables,
        RulesFormat::Iptables => rules::Format::Iptables,
        RulesFormat::Ip6tables => rules::Format::Ip6tables,
        RulesFormat::Netsh => rules::Format::Netsh,
        RulesFormat::CiscoAsa => rules::Format::CiscoAsa,
    };
    let text = rules::render(&plan, format, &args.baseline.display().to_string());
    write_out(args.output.as_deref(), &text)
}

fn policy_from_baseline(
    path: &std::path::Path,
    output: Option<&std::path::Path>,
    force: bool,
    version: Option<exflow::kb::ExchangeVersion>,
) -> u8 {
    let b = match load_baseline(path, "policy from-baseline") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("exflow: error: {e}");
            return exit::ERROR;
        }
    };
    let text = exflow::baseline::to_policy::policy_json(&b, &path.display().to_string(), version);
    // What we write must be what analyze accepts.
    if let Err(e) = Policy::parse(&text, "generated policy") {
        eprintln!("exflow: error: internal: the generated policy does not validate: {e}");
        return exit::ERROR;
    }
    if let Some(p) = output_file(output) {
        if p.exists() && !force {
            eprintln!(
                "exflow: error: {}: already exists (use --force to overwrite)",
                p.display()
            );
            return exit::ERROR;
        }
    }
    write_out(output, &text)
}
