//! The long texts after each command's options: examples, streaming
//! records, permissions, outputs, signals and exit codes.

pub const POLICY_EXAMPLES: &str = "Examples:
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

pub const LIVE_EXAMPLES: &str = "Examples:
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

pub const ANALYZE_EXAMPLES: &str = "Examples:
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

pub const BASELINE_EXAMPLES: &str = "Examples:
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

pub const DIFF_EXAMPLES: &str = "Examples:
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

pub const RULES_EXAMPLES: &str = "Examples:
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

pub const COMPLETIONS_EXAMPLES: &str = "Examples:
  exflow completions bash > /etc/bash_completion.d/exflow
  exflow completions zsh > \"${fpath[1]}/_exflow\"
  exflow completions fish > ~/.config/fish/completions/exflow.fish
  exflow completions powershell >> $PROFILE";

pub const MAN_EXAMPLES: &str = "Examples:
  exflow man | man -l -
      read the manual page now
  exflow man --dir /usr/local/share/man/man1
      install exflow.1 and exflow-analyze.1, exflow-live.1, ... (one per command)";
