//! Connectionless DCE/RPC (ncadg_ip_udp) on one UDP flow: every datagram
//! names its interface, so the flow is labeled without a bind; endpoint-
//! mapper requests and their single-datagram responses are decoded into
//! the same events as on TCP (fragmented calls are not reassembled).

use super::rpc_conn::{epm_query, ConnCtx, EpmQuery, RpcSummary};
use crate::event::{Carrier, EpmAnswerEvent, Event, InterfaceId};
use crate::proto::dcerpc::{parse_cl_header, PacketType, UUID_EPM};
use crate::proto::epm::{parse_epm_response, OPNUM_EPT_LOOKUP, OPNUM_EPT_MAP};
use crate::proto::ndr::NdrSyntax;

/// Requests awaiting their response (by activity and sequence number).
const MAX_PENDING: usize = 32;
/// `flags1` bit: the datagram is one fragment of a larger call.
const PFCL1_FRAG: u8 = 0x04;

#[derive(Clone, Copy, Debug)]
struct Pending {
    activity: [u8; 16],
    seqnum: u32,
    opnum: u16,
    query: Option<EpmQuery>,
}

/// Connectionless DCE/RPC state of one UDP flow.
#[derive(Debug, Default)]
pub struct RpcClFlow {
    pending: Vec<Pending>,
    summary: RpcSummary,
}

impl RpcClFlow {
    /// One datagram of direction `dir` (0 = the flow's originator).
    pub fn on_datagram(&mut self, dir: usize, data: &[u8], ctx: &ConnCtx, events: &mut Vec<Event>) {
        let Ok(pdu) = parse_cl_header(data) else {
            self.summary.malformed += 1;
            return;
        };
        self.summary.pdus += 1;
        let le = pdu.drep[0] & 0x10 != 0;
        let interface = InterfaceId {
            uuid: pdu.interface,
            major: (pdu.if_vers & 0xffff) as u16,
            minor: (pdu.if_vers >> 16) as u16,
        };
        let single = pdu.flags1 & PFCL1_FRAG == 0;
        match pdu.ptype {
            PacketType::Request if dir == 0 => {
                self.summary.requests += 1;
                self.summary.bound(interface, true, false);
                let query = (interface.uuid == UUID_EPM
                    && single
                    && matches!(pdu.opnum, OPNUM_EPT_MAP | OPNUM_EPT_LOOKUP))
                .then(|| epm_query(pdu.opnum, pdu.body, NdrSyntax::Ndr20, le))
                .flatten();
                if self.pending.len() >= MAX_PENDING {
                    self.pending.remove(0);
                }
                self.pending.push(Pending {
                    activity: pdu.activity.0,
                    seqnum: pdu.seqnum,
                    opnum: pdu.opnum,
                    query,
                });
            }
            PacketType::Response if dir == 1 => {
                let Some(i) = self
                    .pending
                    .iter()
                    .position(|p| p.activity == pdu.activity.0 && p.seqnum == pdu.seqnum)
                else {
                    return;
                };
                let req = self.pending.remove(i);
                let Some(q) = req.query else { return };
                if !single {
                    return;
                }
                match parse_epm_response(req.opnum, pdu.body, NdrSyntax::Ndr20, le) {
                    Ok(answer) => {
                        self.summary.epm_answers += 1;
                        events.push(Event::EpmAnswer(EpmAnswerEvent::from_answer(
                            ctx,
                            Carrier::Udp,
                            pdu.seqnum,
                            &q,
                            false,
                            answer,
                        )));
                    }
                    Err(_) => self.summary.malformed += 1,
                }
            }
            PacketType::Fault | PacketType::Reject if dir == 1 => self.summary.faults += 1,
            _ => {}
        }
    }

    pub fn summary(&self) -> RpcSummary {
        self.summary.clone()
    }
}
