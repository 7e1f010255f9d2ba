//! BPF filtering inside the sources, compiled by libpcap once per link type.

use std::fmt;

use super::LinkType;

/// A BPF filter expression that libpcap could not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// The filter text as given.
    pub filter: String,
    /// The link type it was compiled for.
    pub link_type: LinkType,
    /// libpcap's message.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid BPF filter \"{}\" for link type {} ({}): {}",
            self.filter, self.link_type.0, self.link_type, self.message
        )
    }
}

impl std::error::Error for FilterError {}

/// The filter (if any) and its compiled program per link type.
#[derive(Default)]
pub(crate) struct FilterSet {
    expr: Option<String>,
    programs: Vec<(LinkType, pcap::BpfProgram)>,
    /// Index into `programs` of the last link type used (almost always hit).
    last: usize,
}

impl FilterSet {
    /// A set for `expr`; `None` or an all-blank expression matches everything.
    pub fn new(expr: Option<&str>) -> Self {
        FilterSet {
            expr: expr.filter(|e| !e.trim().is_empty()).map(str::to_owned),
            programs: Vec::new(),
            last: 0,
        }
    }

    /// The filter expression (`None`: everything matches).
    pub fn expression(&self) -> Option<&str> {
        self.expr.as_deref()
    }

    /// Compiles the filter for `link` unless already done.
    pub fn prepare(&mut self, link: LinkType) -> Result<(), FilterError> {
        self.index_of(link).map(|_| ())
    }

    /// Whether the frame `data` of link type `link` passes the filter.
    #[inline]
    pub fn matches(&mut self, link: LinkType, data: &[u8]) -> Result<bool, FilterError> {
        if self.expr.is_none() {
            return Ok(true);
        }
        let idx = self.index_of(link)?;
        Ok(self
            .programs
            .get(idx)
            .is_some_and(|(_, prog)| prog.filter(data)))
    }

    fn index_of(&mut self, link: LinkType) -> Result<usize, FilterError> {
        let Some(expr) = &self.expr else {
            return Ok(0);
        };
        if matches!(self.programs.get(self.last), Some((l, _)) if *l == link) {
            return Ok(self.last);
        }
        let idx = match self.programs.iter().position(|(l, _)| *l == link) {
            Some(i) => i,
            None => {
                let prog = compile(expr, link)?;
                self.programs.push((link, prog));
                self.programs.len() - 1
            }
        };
        self.last = idx;
        Ok(idx)
    }
}

/// libpcap's `DLT_RAW` on this platform (12; 14 only on OpenBSD).
const DLT_RAW: i32 = 12;

/// The libpcap DLT_* value for a LINKTYPE_* value (`pcap_open_dead` wants
/// DLTs; they differ for raw IP).
pub(crate) fn link_to_dlt(link: LinkType) -> i32 {
    match link.0 {
        12 | 14 | 101 => DLT_RAW,
        n => i32::from(n),
    }
}

/// The LINKTYPE_* value for a DLT_* value reported by libpcap.
pub(crate) fn dlt_to_link(dlt: i32) -> LinkType {
    match dlt {
        DLT_RAW | 14 => LinkType::RAW,
        n => LinkType(u16::try_from(n & 0xffff).unwrap_or(u16::MAX)),
    }
}

pub(crate) fn compile(expr: &str, link: LinkType) -> Result<pcap::BpfProgram, FilterError> {
    let err = |message: String| FilterError {
        filter: expr.to_owned(),
        link_type: link,
        message,
    };
    let dead =
        pcap::Capture::dead(pcap::Linktype(link_to_dlt(link))).map_err(|e| err(e.to_string()))?;
    dead.compile(expr, true).map_err(|e| match e {
        pcap::Error::PcapError(msg) => err(msg),
        other => err(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_and_filters() {
        let mut f = FilterSet::new(Some("udp"));
        // Ethernet + IPv4 + UDP header, enough for the filter.
        let mut frame = vec![0u8; 42];
        frame[12] = 0x08;
        frame[14] = 0x45;
        frame[23] = 17;
        assert!(f.matches(LinkType::ETHERNET, &frame).unwrap());
        frame[23] = 6;
        assert!(!f.matches(LinkType::ETHERNET, &frame).unwrap());
        assert_eq!(f.programs.len(), 1);
        assert!(FilterSet::new(None).matches(LinkType::RAW, &[]).unwrap());
        // Raw IP compiles through libpcap's DLT_RAW.
        let mut raw = FilterSet::new(Some("ip"));
        assert!(raw.matches(LinkType::RAW, &frame[14..]).unwrap());
        assert!(raw.matches(LinkType(12), &frame[14..]).unwrap());
    }

    #[test]
    fn bad_filter_reports_libpcap_message() {
        let e = FilterSet::new(Some("port nonsense"))
            .prepare(LinkType::ETHERNET)
            .unwrap_err();
        assert_eq!(e.filter, "port nonsense");
        assert!(!e.message.is_empty());
        assert!(e.to_string().contains("port nonsense"), "{e}");
    }
}
