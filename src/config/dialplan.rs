//! The compiled dial plan: who a call comes from and where it goes, decided from the config
//! alone (pure: no I/O, no clock), so the switch and `switchboard route` take the same
//! decision and can say why.
//!
//! Inbound (an INVITE from the network):
//! - The source address picks the trunk: the trunk with a CIDR in `inbound_cidrs` that
//!   contains it. Several may: the most specific block (longest prefix) wins, then config
//!   order (trunk, then block within the trunk). IPv4-mapped IPv6 sources (`::ffff:a.b.c.d`)
//!   match IPv4 blocks. No trunk: `UnknownSource` (403); such a call is never routed out.
//! - The called number picks the application from `[[numbers]]`, matched **exactly**: numbers
//!   are configured as E.164 with a leading `+`, and the called number is not normalised (no
//!   `+` added, no separators stripped), so `15550100001` or `+1 555 0100001` do not match
//!   `+15550100001`. Whoever extracts the number from the Request-URI / To header owns any
//!   rewriting; the dry-run points out the near miss of a missing `+`.
//!   No number: `UnknownNumber` (404); a number restricted to another trunk:
//!   `NumberNotOnThisTrunk` (404). A carrier call is never routed out again.
//!
//! Outbound (a number an account dials through a trunk): only the account's own routes (a
//! route belongs to its trunk's account) and routes marked `shared` are candidates, so one
//! account can never dial out through another's trunk and credentials. Among them the
//! `[[routes]]` pattern that is the longest prefix of the number wins; `*` matches anything
//! and ranks below every prefix; routes with the same pattern go by `priority` (lower
//! first, unset last), then config order.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::Config;
use super::net::Cidr;

/// The config's routing rules, compiled for lookups. Owns its data, so it outlives the
/// `Config` it was built from and can be swapped with it.
#[derive(Debug, Clone)]
pub struct DialPlan {
    /// Every trunk CIDR, most specific first, then config order.
    nets: Vec<InboundNet>,
    numbers: Vec<NumberRule>,
    /// Routes in decision order: longest prefix first, `*` last, then priority, then config
    /// order. The first match is the answer.
    routes: Vec<RouteRule>,
}

#[derive(Debug, Clone)]
struct InboundNet {
    cidr: Cidr,
    trunk: String,
    account: String,
}

#[derive(Debug, Clone)]
struct NumberRule {
    number: String,
    application: String,
    application_name: Option<String>,
    trunk: Option<String>,
}

#[derive(Debug, Clone)]
struct RouteRule {
    pattern: String,
    trunk: String,
    /// The trunk's account, which owns the route.
    account: String,
    /// Any account may take it.
    shared: bool,
    outbound_uri: Option<String>,
    priority: Option<u32>,
    /// 1-based position in `[[routes]]`, for the explanation.
    index: usize,
    /// How many routes share this pattern.
    same_pattern: usize,
}

/// Where an INVITE from the network goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundDecision {
    /// A carrier call for `account`, answered by `application`.
    Carrier {
        source: IpAddr,
        trunk: String,
        /// The trunk block the source is in.
        cidr: Cidr,
        /// The trunk's account.
        account: String,
        /// Application sid.
        application: String,
        application_name: Option<String>,
        number: String,
    },
    /// From a trunk, to a number that is not ours (404).
    UnknownNumber {
        source: IpAddr,
        trunk: String,
        cidr: Cidr,
        number: String,
        /// `+` + the number, when that is configured (a likely missing `+`).
        did_you_mean: Option<String>,
    },
    /// From a trunk, to a number only accepted from `allowed_trunk` (404).
    NumberNotOnThisTrunk {
        source: IpAddr,
        trunk: String,
        cidr: Cidr,
        number: String,
        allowed_trunk: String,
    },
    /// From outside every trunk's `inbound_cidrs` (403).
    UnknownSource { source: IpAddr },
}

impl InboundDecision {
    /// The SIP status the switch answers with: 200 stands for "accepted and handed to the
    /// application" (its final answer is the application's), 404 and 403 are final.
    pub fn status(&self) -> u16 {
        match self {
            InboundDecision::Carrier { .. } => 200,
            InboundDecision::UnknownNumber { .. }
            | InboundDecision::NumberNotOnThisTrunk { .. } => 404,
            InboundDecision::UnknownSource { .. } => 403,
        }
    }

    /// One line per rule that took part in the decision.
    pub fn reasons(&self) -> Vec<String> {
        let from = |source: &IpAddr, trunk: &str, cidr: &Cidr| {
            format!("source {source} is inside trunk `{trunk}` ({cidr})")
        };
        match self {
            InboundDecision::Carrier {
                source,
                trunk,
                cidr,
                application,
                application_name,
                number,
                ..
            } => vec![
                from(source, trunk, cidr),
                format!(
                    "{number} is a configured number → application {application}{}",
                    name_suffix(application_name.as_deref())
                ),
            ],
            InboundDecision::UnknownNumber {
                source,
                trunk,
                cidr,
                number,
                did_you_mean,
            } => {
                let mut v = vec![
                    from(source, trunk, cidr),
                    format!(
                        "{} is not in [[numbers]]; calls from a carrier are never routed out",
                        shown(number)
                    ),
                ];
                if let Some(plus) = did_you_mean {
                    v.push(format!(
                        "numbers match exactly, as E.164 with a leading +: {plus} is configured"
                    ));
                }
                v
            }
            InboundDecision::NumberNotOnThisTrunk {
                source,
                trunk,
                cidr,
                number,
                allowed_trunk,
            } => vec![
                from(source, trunk, cidr),
                format!("{number} accepts calls only from trunk `{allowed_trunk}`"),
            ],
            InboundDecision::UnknownSource { source } => vec![format!(
                "source {source} is not inside any trunk's inbound_cidrs; \
                 calls from unknown sources are refused, never routed out"
            )],
        }
    }

    /// The reasons on one line.
    pub fn why(&self) -> String {
        self.reasons().join("; ")
    }

    /// The result in a few words, without the reasons.
    pub fn summary(&self) -> String {
        match self {
            InboundDecision::Carrier {
                trunk,
                account,
                application,
                application_name,
                ..
            } => format!(
                "carrier call on trunk `{trunk}` for account {account} → application \
                 {application}{}",
                name_suffix(application_name.as_deref())
            ),
            InboundDecision::UnknownNumber { trunk, number, .. } => {
                format!(
                    "{} is not a number of ours (from trunk `{trunk}`)",
                    shown(number)
                )
            }
            InboundDecision::NumberNotOnThisTrunk {
                trunk,
                number,
                allowed_trunk,
                ..
            } => format!("{number} is not reachable from trunk `{trunk}` (only `{allowed_trunk}`)"),
            InboundDecision::UnknownSource { source } => {
                format!("{source} is not a known trunk")
            }
        }
    }
}

/// Which trunk dials a number out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundDecision {
    pub number: String,
    pub trunk: String,
    /// The account owning the trunk (the caller's own, or the owner of a shared route).
    pub trunk_account: String,
    /// Where the INVITE goes; validation guarantees it for trunks that routes use, `None`
    /// only for a hand-built config.
    pub outbound_uri: Option<String>,
    /// The winning route's pattern.
    pub pattern: String,
    /// One line naming the rule.
    pub why: String,
}

impl OutboundDecision {
    /// 200 when the trunk has somewhere to send the call, else 503 (a route to a trunk
    /// without `outbound_uri`, which a validated config cannot have).
    pub fn status(&self) -> u16 {
        if self.outbound_uri.is_some() {
            200
        } else {
            503
        }
    }

    pub fn why(&self) -> String {
        self.why.clone()
    }
}

impl DialPlan {
    /// Compile a (validated) config. Unparseable route patterns cannot occur after
    /// validation; in a hand-built config they simply never match.
    pub fn new(cfg: &Config) -> DialPlan {
        let mut nets: Vec<(usize, InboundNet)> = Vec::new();
        for t in &cfg.trunks {
            for cidr in &t.inbound_nets {
                let n = nets.len();
                nets.push((
                    n,
                    InboundNet {
                        cidr: *cidr,
                        trunk: t.name.clone(),
                        account: t.account.clone(),
                    },
                ));
            }
        }
        // Stable on config order: most specific first.
        nets.sort_by_key(|(i, n)| (std::cmp::Reverse(n.cidr.prefix()), *i));

        let numbers = cfg
            .numbers
            .iter()
            .map(|n| NumberRule {
                number: n.number.clone(),
                application: n.application.clone(),
                application_name: cfg
                    .applications
                    .iter()
                    .find(|a| a.sid == n.application)
                    .and_then(|a| a.friendly_name.clone()),
                trunk: n.trunk.clone(),
            })
            .collect();

        let mut routes: Vec<RouteRule> = cfg
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let trunk = cfg.trunks.iter().find(|t| t.name == r.trunk);
                RouteRule {
                    pattern: r.pattern.clone(),
                    trunk: r.trunk.clone(),
                    // A route naming a missing trunk belongs to nobody and matches no call; a
                    // route whose `account` disagrees with its trunk's cannot pass validation.
                    account: trunk.map(|t| t.account.clone()).unwrap_or_default(),
                    shared: r.shared,
                    outbound_uri: trunk.and_then(|t| t.outbound_uri.clone()),
                    priority: r.priority,
                    index: i + 1,
                    same_pattern: cfg.routes.iter().filter(|o| o.pattern == r.pattern).count(),
                }
            })
            .collect();
        // sort_by_key is stable, so config order breaks the last tie.
        routes.sort_by_key(|r| {
            (
                std::cmp::Reverse(specificity(&r.pattern)),
                r.priority.is_none(),
                r.priority,
            )
        });

        DialPlan {
            nets: nets.into_iter().map(|(_, n)| n).collect(),
            numbers,
            routes,
        }
    }

    /// Decide an INVITE from `source` to `called` (compared exactly; see the module docs).
    pub fn inbound(&self, source: IpAddr, called: &str) -> InboundDecision {
        let Some(net) = self.nets.iter().find(|n| n.cidr.contains(source)) else {
            return InboundDecision::UnknownSource { source };
        };
        let (trunk, cidr) = (net.trunk.clone(), net.cidr);
        let Some(rule) = self.number(called) else {
            let did_you_mean = (!called.starts_with('+'))
                .then(|| format!("+{called}"))
                .filter(|plus| self.number(plus).is_some());
            return InboundDecision::UnknownNumber {
                source,
                trunk,
                cidr,
                number: called.to_owned(),
                did_you_mean,
            };
        };
        match &rule.trunk {
            Some(allowed) if *allowed != net.trunk => InboundDecision::NumberNotOnThisTrunk {
                source,
                trunk,
                cidr,
                number: called.to_owned(),
                allowed_trunk: allowed.clone(),
            },
            _ => InboundDecision::Carrier {
                source,
                trunk,
                cidr,
                account: net.account.clone(),
                application: rule.application.clone(),
                application_name: rule.application_name.clone(),
                number: called.to_owned(),
            },
        }
    }

    /// The account of the trunk whose `inbound_cidrs` hold `source`, if any.
    pub fn source_account(&self, source: IpAddr) -> Option<&str> {
        self.nets
            .iter()
            .find(|n| n.cidr.contains(source))
            .map(|n| n.account.as_str())
    }

    /// Whether `number` is one of our `[[numbers]]` (exact match).
    pub fn is_our_number(&self, number: &str) -> bool {
        self.number(number).is_some()
    }

    fn number(&self, number: &str) -> Option<&NumberRule> {
        self.numbers.iter().find(|n| n.number == number)
    }

    /// The route an outbound call of `account` to `number` takes, if any: one of the
    /// account's own routes or a shared one, never another account's.
    pub fn outbound(&self, account: &str, number: &str) -> Option<OutboundDecision> {
        let r = self.routes.iter().find(|r| {
            (r.shared || (!r.account.is_empty() && r.account == account))
                && matches(&r.pattern, number)
        })?;
        let mut why = format!("{} → trunk `{}`", shown(number), r.trunk);
        if r.account != account {
            let _ = write!(why, " of account {} (shared route)", r.account);
        }
        match &r.outbound_uri {
            Some(uri) => {
                let _ = write!(why, " ({uri})");
            }
            None => why.push_str(" (which has no outbound_uri)"),
        }
        let _ = write!(why, " by [[routes]] #{}: ", r.index);
        if r.pattern == "*" {
            why.push_str("no prefix route matches, `*` catches everything");
        } else {
            let _ = write!(why, "`{}` is the longest matching route prefix", r.pattern);
        }
        if r.same_pattern > 1 {
            let prio = r
                .priority
                .map_or_else(|| "no priority".to_owned(), |p| format!("priority {p}"));
            let _ = write!(
                why,
                " ({prio}, first of {} routes with that pattern)",
                r.same_pattern
            );
        }
        Some(OutboundDecision {
            number: number.to_owned(),
            trunk: r.trunk.clone(),
            trunk_account: r.account.clone(),
            outbound_uri: r.outbound_uri.clone(),
            pattern: r.pattern.clone(),
            why,
        })
    }
}

/// Rank of a pattern: `*` below every prefix, longer prefixes above shorter ones.
fn specificity(pattern: &str) -> i64 {
    if pattern == "*" {
        -1
    } else {
        i64::try_from(pattern.len()).unwrap_or(i64::MAX)
    }
}

fn matches(pattern: &str, number: &str) -> bool {
    pattern == "*" || (!pattern.is_empty() && number.starts_with(pattern))
}

fn name_suffix(name: Option<&str>) -> String {
    name.map_or_else(String::new, |n| format!(" ({n})"))
}

/// A number as shown in messages: quoted when it would otherwise be invisible or ambiguous.
fn shown(number: &str) -> String {
    if number.is_empty() || number.bytes().any(|b| !b.is_ascii_graphic()) {
        format!("{number:?}")
    } else {
        number.to_owned()
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// What `switchboard route --from SOURCE --to CALLED [--account SID]` prints, and its exit
/// status: 0 when the call would be accepted, 1 when refused (403/404). The first line is
/// the result, the following lines the reasons; when the called number is not ours, a last
/// line says what an outbound call to it would use (informational: a call from the network
/// is never routed out). Routes belong to accounts, so that line is for `account`, or the
/// account of the trunk `source` belongs to.
pub fn explain(
    plan: &DialPlan,
    source: IpAddr,
    called: &str,
    account: Option<&str>,
) -> (u8, String) {
    let d = plan.inbound(source, called);
    let status = d.status();
    let verdict = if status < 300 { "accept" } else { "refuse" };
    let mut out = format!(
        "{verdict} {status} {}: {}\n",
        reason_phrase(status),
        d.summary()
    );
    for r in d.reasons() {
        let _ = writeln!(out, "  because {r}");
    }
    if !plan.is_our_number(called) {
        let account = account.or_else(|| plan.source_account(source));
        match account {
            None => {
                let _ = writeln!(
                    out,
                    "  if dialled out: routes belong to accounts; pass --account to see which trunk an account would use"
                );
            }
            Some(account) => match plan.outbound(account, called) {
                Some(o) => {
                    let _ = writeln!(out, "  if dialled out by {account}: {}", o.why);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  if dialled out by {account}: no route of that account (or shared) matches {}, so no trunk would dial it",
                        shown(called)
                    );
                }
            },
        }
    }
    (if status < 300 { 0 } else { 1 }, out)
}

#[cfg(test)]
#[path = "dialplan_tests.rs"]
mod tests;
