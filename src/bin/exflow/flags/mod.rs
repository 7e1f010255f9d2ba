//! The command line's grammar: clap's structs for every command and
//! option, their value parsers, and the texts after each command's
//! options ([`examples`]). Turning the options into the library's
//! [`Options`] is here too ([`AnalysisArgs::options`]); what each command
//! does with them is in its own module.

mod duration;
mod examples;

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use exflow::correlate::CorrelateConfig;
use exflow::flow::{FlowConfig, SECOND};
use exflow::pipeline::{Options, LOGICAL_SHARDS};
use exflow::policy::Policy;
use exflow::roles::{Cidr, Roles};

use crate::output::output_file;
use crate::Failure;
use duration::{parse_duration, parse_interval};
use examples::*;

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
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (troff), or write one page per command into a directory
    #[command(after_help = MAN_EXAMPLES)]
    Man {
        /// Write exflow.1 and one exflow-COMMAND.1 per command into DIR instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
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

#[derive(Args)]
pub struct LiveArgs {
    /// Network interface to capture on (see --list-interfaces)
    #[arg(
        short,
        long,
        value_name = "IFACE",
        required_unless_present = "list_interfaces"
    )]
    pub interface: Option<String>,

    /// List the interfaces that can be captured on, and exit (-D as in tcpdump)
    #[arg(short = 'D', long)]
    pub list_interfaces: bool,

    /// Only capture packets matching this BPF filter (tcpdump syntax), compiled by the kernel;
    /// keep the dynamic RPC ports in it (hand-offs whose follow-up it drops are not-captured)
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,

    /// Bytes captured per packet at most (DCE/RPC needs whole packets)
    #[arg(long, value_name = "N", default_value_t = 262_144,
          value_parser = clap::value_parser!(u32).range(64..=262_144))]
    pub snaplen: u32,

    /// Do not put the interface in promiscuous mode
    #[arg(long)]
    pub no_promisc: bool,

    /// Kernel capture buffer in MB; raise it if kernel drops appear
    #[arg(long, value_name = "MB", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub buffer_size: u32,

    /// Stop after this long: seconds, or a number with s, m, h or d (e.g. 90, 10m, 8h)
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// Stop after this many packets (that passed the filter)
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,

    /// Append the streaming records to this file (- for standard output, the default); it is
    /// never emptied, so a restart loses nothing, and SIGHUP reopens it (for logrotate)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Write a stats record (packets, drops, flows tracked, records written) to the streaming
    /// records this often, and once at the stop: seconds, or a number with s, m, h or d; 0: never
    #[arg(long, value_name = "D", value_parser = parse_interval, default_value = "60s")]
    pub stats_interval: std::time::Duration,

    /// Also write the captured packets to this pcap file, rotated by --rotate-size (not by
    /// SIGHUP)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Write the packets of every failed attempt to this pcap as each is decided: their
    /// headers only (the first bytes of every packet are kept for a while, --write-failed-mb;
    /// no payload leaves, so no NTLM or Kerberos material)
    #[arg(long, value_name = "FILE")]
    pub write_failed: Option<PathBuf>,

    /// With --write-failed: memory for the recent packets' headers (MB); a flow whose
    /// packets are older than what it holds when it is decided gets the ones still kept
    #[arg(
        long,
        value_name = "MB",
        default_value_t = 64,
        requires = "write_failed"
    )]
    pub write_failed_mb: u64,

    /// Start a new -w file (FILE.1, FILE.2, ...) when the current one would exceed this (MB;
    /// 0: never)
    #[arg(long, value_name = "MB", default_value_t = 100, requires = "write")]
    pub rotate_size: u64,

    /// Most ended flows kept for the final report (memory stays flat over days). Beyond it,
    /// working flows whose client, server and port already have one kept are let go (and
    /// counted in stats.flows_not_retained); failed attempts and parsed protocols are kept
    /// first. 0: keep all (the report then equals `exflow analyze` exactly, memory grows)
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub retain_flows: usize,

    /// Also write the baseline of what was captured to FILE when the capture stops
    /// (as `exflow baseline` does for files; merge it with others by `exflow baseline merge`)
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Drop root privileges to this user once the interface is open (as tcpdump -Z);
    /// -o, --events and -w files are then created as that user
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Never draw the status line
    #[arg(long)]
    pub no_status: bool,

    /// Once the capture stops, how long writing the records, the report and the baseline may
    /// take; past it exflow says what it was waiting for and exits 4 rather than hang
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "60s")]
    pub stop_timeout: std::time::Duration,

    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable summary
    Text,
    /// One JSON object (schema exflow.report/1)
    Json,
    /// One JSON record per line, for log shippers
    Ndjson,
    /// One table as CSV (RFC 4180): findings, verdicts or flows (--csv)
    Csv,
    /// The flows as a Zeek conn.log (TSV with Zeek's header lines; zeek-cut reads it)
    Zeek,
    /// NDJSON with Elastic Common Schema field names (and Suricata EVE's event_type): a
    /// record per flow and per finding, for SIEM pipelines (docs/ecs.md)
    Ecs,
    /// One self-contained page for a change ticket: what is blocked with the fix, a
    /// diagram of who talks to whom across the firewall, a timeline, sortable tables
    Html,
}

/// `--csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CsvArg {
    /// One row per finding, with the fix's summary
    Findings,
    /// One row per verdict (client group, server, service, port)
    Verdicts,
    /// One row per flow, with its outcome
    Flows,
}

impl From<CsvArg> for exflow::report::CsvTable {
    fn from(c: CsvArg) -> Self {
        match c {
            CsvArg::Findings => Self::Findings,
            CsvArg::Verdicts => Self::Verdicts,
            CsvArg::Flows => Self::Flows,
        }
    }
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// When the report goes to a terminal and NO_COLOR is unset or empty
    Auto,
    /// Always (even into a file or a pipe)
    Always,
    /// Never
    Never,
}

impl ColorArg {
    /// Whether a report written to `output` (None or "-": standard output)
    /// is coloured (<https://no-color.org>: a non-empty NO_COLOR turns it off).
    pub fn wanted(self, output: Option<&std::path::Path>) -> bool {
        match self {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                !no_color && crate::output::to_terminal(output)
            }
        }
    }
}

/// `--flows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlowsArg {
    /// Every flow
    All,
    /// The failed connection attempts only
    Failed,
    /// No flow records
    None,
}

impl From<FlowsArg> for exflow::report::FlowSelection {
    fn from(f: FlowsArg) -> Self {
        match f {
            FlowsArg::All => Self::All,
            FlowsArg::Failed => Self::Failed,
            FlowsArg::None => Self::None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Reader {
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
pub struct AnalysisArgs {
    /// The expected firewall policy (JSON; `exflow policy init` writes a starter).
    /// Without one, verdicts still say what works and what is blocked.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Write the report to this file instead of standard output (- for standard output)
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,

    /// Which flow records a json or ndjson report carries: every flow, only the failed
    /// attempts (blocked or refused by the host, as the verdicts count them), or none
    /// (findings and verdicts alone: a million-flow capture's report shrinks from ~900 MB
    /// to its findings). Findings, verdicts and stats.flows are the same whichever;
    /// stats.flows_reported says how many were written. The text report always lists the
    /// failed attempts and sums up all flows.
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = FlowsArg::All)]
    pub flows: FlowsArg,

    /// The table a csv report holds
    #[arg(long, value_enum, value_name = "TABLE", default_value_t = CsvArg::Findings)]
    pub csv: CsvArg,

    /// Colour in the text report (BLOCKED red, working green): auto colours when the
    /// report goes to a terminal and NO_COLOR is not set
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorArg::Auto)]
    pub color: ColorArg,

    /// Shard worker threads [default: available cores]. The report is identical for every value.
    #[arg(short = 't', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// Idle timeout (seconds) for TCP connections whose handshake never completed
    #[arg(long, value_name = "SECS", default_value_t = 75)]
    pub tcp_handshake_timeout: u64,

    /// Idle timeout (seconds) for established TCP connections
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub tcp_idle_timeout: u64,

    /// Idle timeout (seconds) for UDP conversations
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub udp_timeout: u64,

    /// Most flows tracked at once; beyond it the least recently active are evicted (and counted)
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub max_flows: usize,

    /// How long (seconds) after an endpoint-mapper answer the client's connection to the
    /// announced port may start and still count as its follow-up
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub handoff_window: u64,

    /// Exchange servers (addresses or CIDR networks, comma-separated): UDP they send from a
    /// port > 1024 to a client port > 1024 is taken for MAPI new-mail notifications
    #[arg(long, value_name = "IP[,IP...]", value_delimiter = ',')]
    pub exchange: Vec<Cidr>,

    /// Domain controllers / global catalogs (addresses or CIDR networks, comma-separated)
    #[arg(long, value_name = "IP[,IP...]", value_delimiter = ',')]
    pub dc: Vec<Cidr>,

    /// Client networks (CIDR, comma-separated): notifications are only looked for towards them
    #[arg(long, value_name = "CIDR[,CIDR...]", value_delimiter = ',')]
    pub clients: Vec<Cidr>,

    #[command(flatten)]
    pub version: ExchangeVersionArg,

    /// Do not parse DCE/RPC (no hand-offs, endpoints or interface labels; a little faster)
    #[arg(long)]
    pub no_dcerpc: bool,
}

/// `--exchange-version`: which registry values pin a port depends on it.
#[derive(Args, Clone, Copy, Default)]
pub struct ExchangeVersionArg {
    /// The Exchange servers' version: 5.5 (4.0 and 5.0 too), 2000, 2003 or 2007. The registry
    /// value that pins a port depends on it (the directory's NSPI: 5.5 MSExchangeDS, 2000-2007
    /// MSExchangeSA "TCP/IP NSPI Port"); without it, a policy's profiles decide, else every
    /// version's value is given, each labelled. Later versions are not covered by the articles.
    #[arg(long = "exchange-version", value_name = "VERSION", value_parser = parse_exchange_version)]
    pub exchange_version: Option<exflow::kb::ExchangeVersion>,
}

pub fn parse_exchange_version(s: &str) -> Result<exflow::kb::ExchangeVersion, String> {
    exflow::kb::ExchangeVersion::parse(s)
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng), directories of captures, or - for standard input.
    /// Several inputs are merged by timestamp.
    #[arg(value_name = "FILE", required_unless_present_any = ["inside", "outside", "read"])]
    pub inputs: Vec<String>,

    /// A capture to read, as tcpdump's -r (the same as naming it; may be repeated)
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with_all = ["inside", "outside"])]
    pub read: Vec<String>,

    /// Also write the packets behind the findings to FILE (pcap, for Wireshark and change
    /// tickets): every failed attempt, the ICMP errors quoting them, and the endpoint-mapper
    /// conversations whose answers named a port. Payloads are cut after the headers (the
    /// mapper's DCE/RPC PDUs stay unless they carry authentication), so no NTLM or Kerberos
    /// material leaves; see --write-failed-payloads. The inputs are read a second time
    /// (files only). With two taps, inputs of several link types or a FILE ending in
    /// .pcapng: a pcapng whose interfaces name the tap ("inside", "outside") or the input
    /// each packet was seen on
    #[arg(long, value_name = "FILE")]
    pub write_failed: Option<PathBuf>,

    /// With --write-failed: keep whole payloads
    #[arg(long, requires = "write_failed")]
    pub write_failed_payloads: bool,

    /// Two-tap analysis: captures taken on the inside (client side) of the firewall
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "outside", conflicts_with = "inputs")]
    pub inside: Vec<String>,

    /// Two-tap analysis: captures taken on the outside (server side) of the firewall
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "inside")]
    pub outside: Vec<String>,

    #[command(flatten)]
    pub analysis: AnalysisArgs,

    /// Only analyze packets matching this BPF filter (tcpdump syntax), e.g. 'tcp port 135 or
    /// tcp portrange 1024-65535'; hand-offs whose follow-up it drops are not-captured
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,

    /// How capture files are read
    #[arg(long, value_enum, default_value_t = Reader::Native)]
    pub reader: Reader,

    /// Never draw the progress line (drawn only when stderr is a terminal: packets, bytes,
    /// rate, and for files how far through them and the time left)
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Subcommand)]
pub enum BaselineCommand {
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
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: Option<BaselineCommand>,
    /// Capture files (pcap or pcapng), directories of captures, or - for standard input
    #[arg(value_name = "FILE", required = true)]
    pub inputs: Vec<String>,
    /// Where to write the baseline (- for standard output, the default)
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// How captures are read by baseline and diff (a subset of analyze's options).
#[derive(Args, Clone)]
pub struct CaptureArgs {
    /// A policy file: its groups name the client groups (else /24, IPv6 /64)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Shard worker threads [default: available cores]. The output is identical for every value.
    #[arg(short = 't', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Only read packets matching this BPF filter (tcpdump syntax)
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// A readable list
    Text,
    /// One JSON object (schema exflow.baseline-diff/1)
    Json,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The old side: a baseline (JSON) or a capture (pcap/pcapng)
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The new side: a baseline (JSON) or a capture (pcap/pcapng)
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Write the diff to this file instead of standard output (- for standard output)
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub capture: CaptureArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
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
pub enum DynamicMode {
    /// Allow the ports each RPC interface was seen on (not the range between them)
    Observed,
    /// No rule for dynamic ports: say how to pin them (registry values)
    Pin,
}

#[derive(Args)]
pub struct RulesArgs {
    /// A baseline file (`exflow baseline`)
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// Rule format
    #[arg(short, long, value_enum, default_value_t = RulesFormat::Nftables)]
    pub format: RulesFormat,
    /// Dynamic RPC ports: recommend pinning them, or allow the observed ports
    #[arg(long, value_enum, default_value_t = DynamicMode::Pin)]
    pub dynamic: DynamicMode,
    /// Write the rules to this file instead of standard output (- for standard output)
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub version: ExchangeVersionArg,
}

impl AnalysisArgs {
    /// Loads `--policy`.
    pub fn load_policy(&self) -> Result<Option<Arc<Policy>>, Failure> {
        match &self.policy {
            Some(path) => Ok(Some(Arc::new(Policy::load(path).map_err(Failure::error)?))),
            None => Ok(None),
        }
    }

    /// The pipeline options these arguments ask for (the policy's groups
    /// add to --exchange, --dc and --clients).
    pub fn options(&self, policy: Option<Arc<Policy>>) -> Options {
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
            evidence: None,
        }
    }

    /// Where the report goes: `-o FILE` or standard output.
    pub fn report_writer(&self) -> Result<Box<dyn Write>, Failure> {
        Ok(match output_file(self.output.as_deref()) {
            Some(path) => match std::fs::File::create(path) {
                Ok(f) => Box::new(BufWriter::with_capacity(1 << 20, f)),
                Err(e) => {
                    return Err(Failure::error(format!(
                        "{}: cannot create: {e}",
                        path.display()
                    )))
                }
            },
            None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
        })
    }
}
