//! The `exflow` command line. All the work lives in the library; this file
//! only parses arguments, wires a source to the pipeline and renders output.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use exflow::capture::{self, Source};
use exflow::correlate::CorrelateConfig;
use exflow::flow::{FlowConfig, SECOND};
use exflow::pipeline::{self, Analysis, Options, LOGICAL_SHARDS};
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
    /// Analyzed partially: an input was corrupt or truncated.
    pub const PARTIAL: u8 = 3;
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
                  3 partial (an input was corrupt or truncated; the report covers what was read).\n\n\
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
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Write a starter policy file (documentation addresses: edit them)
    Init {
        /// Built-in profiles to enable (see `exflow policy profiles`)
        #[arg(long = "profile", value_name = "NAME", value_delimiter = ',')]
        profiles: Vec<String>,
        /// Where to write it [default: standard output]
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
    },
    /// List the built-in profiles (one per KB scenario)
    Profiles,
}

const POLICY_EXAMPLES: &str = "Examples:
  exflow policy profiles
      the built-in profiles: the flows each KB scenario needs
  exflow policy init --profile exchange55-mapi-clients,pop3-clients -o policy.json
      a starter file: edit the groups' addresses, then check it
  exflow policy check policy.json
      validate it (errors name the exact field) and print what it allows
  exflow analyze --policy policy.json client-side.pcap
      verdicts against the policy: misconfigured firewall, denied but needed,
      open but not in the policy, in the policy but never seen";

const ANALYZE_EXAMPLES: &str = "Examples:
  exflow analyze pcaps/dyn-drop-client.pcap
      text summary: inputs, failed connection attempts, flows by service and port
  exflow analyze --format json -o report.json captures/
      every capture in a directory, merged by timestamp, as the JSON report
  tcpdump -i eth0 -w - 'port 135' | exflow analyze -
      read a capture from standard input
  exflow analyze --filter 'host 198.51.100.10 and tcp' day1.pcapng day2.pcapng
      a BPF filter (tcpdump syntax) applied to the files
  exflow analyze --exchange 198.51.100.10 --clients 192.0.2.0/24 site.pcap
      say who is who: UDP from the Exchange server to client ports is labeled as
      new-mail notifications
  exflow analyze --policy policy.json site.pcap
      compare what was seen with the expected firewall policy (exflow policy --help)
  exflow analyze --inside client-side.pcap --outside server-side.pcap
      two taps, one on each side of the firewall: what vanished between them is
      what the firewall dropped (clocks are aligned by the packets both saw)

Exit codes: 0 analyzed, nothing to act on; 1 findings present; 2 could not analyze; \
3 partial (an input was corrupt or truncated; the report covers what was read).";

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
    /// exflow's own zero-copy pcap/pcapng reader (fast, exact error offsets)
    Native,
    /// libpcap, through the pcap crate (for cross-checking)
    Libpcap,
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

    /// The expected firewall policy (JSON; `exflow policy init` writes a starter).
    /// Without one, verdicts still say what works and what is blocked.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Write the report to this file instead of standard output
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,

    /// Shard worker threads [default: available cores]. The report is identical for every value.
    #[arg(short = 't', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Only analyze packets matching this BPF filter (tcpdump syntax), e.g. 'tcp port 135'
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,

    /// How capture files are read
    #[arg(long, value_enum, default_value_t = Reader::Native)]
    reader: Reader,

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

    /// Do not parse DCE/RPC (no hand-offs, endpoints or interface labels; a little faster)
    #[arg(long)]
    no_dcerpc: bool,

    /// Never draw the progress line (it is drawn only when stderr is a terminal)
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze(args) => ExitCode::from(analyze(*args)),
        Command::Policy(cmd) => ExitCode::from(policy_command(cmd)),
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
        PolicyCommand::Check { file } => match Policy::load(&file) {
            Ok(p) => {
                print!("{}", p.describe());
                println!("{}: valid", file.display());
                exit::CLEAN
            }
            Err(e) => {
                eprintln!("exflow: error: {e}");
                exit::ERROR
            }
        },
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
            match output {
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
                    match std::fs::write(&path, text) {
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
    let policy = match &args.policy {
        Some(path) => match Policy::load(path) {
            Ok(p) => Some(std::sync::Arc::new(p)),
            Err(e) => {
                eprintln!("exflow: error: {e}");
                return exit::ERROR;
            }
        },
        None => None,
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

    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(BufWriter::with_capacity(1 << 20, f)),
            Err(e) => {
                eprintln!("exflow: error: {}: cannot create: {e}", path.display());
                return exit::ERROR;
            }
        },
        None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    };

    let opts = Options {
        threads: args
            .threads
            .map(usize::from)
            .unwrap_or_else(|| Options::default().threads),
        flow: FlowConfig {
            tcp_handshake_timeout: args.tcp_handshake_timeout.saturating_mul(SECOND),
            tcp_established_timeout: args.tcp_idle_timeout.saturating_mul(SECOND),
            udp_timeout: args.udp_timeout.saturating_mul(SECOND),
            max_flows_per_shard: args.max_flows.div_ceil(LOGICAL_SHARDS).max(1),
            dcerpc: !args.no_dcerpc,
            ..FlowConfig::default()
        },
        correlate: CorrelateConfig {
            handoff_window: args.handoff_window.saturating_mul(SECOND),
            roles: {
                let mut roles = Roles {
                    exchange: args.exchange.clone(),
                    dcs: args.dc.clone(),
                    clients: args.clients.clone(),
                };
                if let Some(p) = &policy {
                    let from_policy = p.roles();
                    roles.exchange.extend(from_policy.exchange);
                    roles.dcs.extend(from_policy.dcs);
                    roles.clients.extend(from_policy.clients);
                }
                roles
            },
        },
        progress: !args.no_progress,
        policy,
    };
    let analysis = match outside {
        None => pipeline::run(source, &opts),
        Some(outside) => {
            let inside = pipeline::collect(source, &opts);
            let outside = pipeline::collect(outside, &opts);
            let (joined, taps) = exflow::taps::join(inside, outside);
            pipeline::finish(joined, &opts, Some(taps))
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

    if let Err(e) = render(&analysis, args.format, &mut out).and_then(|_| out.flush()) {
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
    match format {
        Format::Text => report::write_text(a, out),
        Format::Json => report::write_json(a, out),
        Format::Ndjson => report::write_ndjson(a, out),
    }
}
