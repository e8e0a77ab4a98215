//! The allocation run: offers each agent's free resources to connected frameworks, one offer
//! per (framework, role) and agent, in the order of `drf` (quota guarantees first, then
//! weighted dominant resource fairness), cut down by quota limits and headroom, honouring
//! suppression, refuse filters, `offer_filters` and `offer_constraints`; offer timeouts; the
//! periodic run.

use super::drf::{Ledger, passes_constraints, worth_offering};
use super::*;

impl State {
    /// Offers every agent's available resources to connected frameworks (see the module docs).
    pub fn allocate(&mut self, shared: &Arc<Shared>) {
        if self.stopped || self.leader.is_some() || self.no_leader {
            return;
        }
        self.send_inverse_offers();
        let mut candidates: Vec<(String, String)> = self
            .frameworks
            .values()
            .filter(|f| f.active && f.connected())
            .flat_map(|f| f.roles().into_iter().map(|r| (f.id.clone(), r)))
            .filter(|(f, r)| {
                self.frameworks
                    .get(f)
                    .is_some_and(|f| !f.suppressed_roles.contains(r))
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        candidates.sort();
        // Ties in the order rotate from one run to the next.
        self.round_robin = self.round_robin.wrapping_add(1);
        let start = self.round_robin % candidates.len();
        candidates.rotate_left(start);
        let mut ledger = Ledger::new(self);
        let now = Instant::now();
        let mut made: HashMap<String, Vec<Offer>> = HashMap::new();
        let agent_ids = self.agent_order.clone();
        for agent_id in &agent_ids {
            let Some(agent) = self.agents.get(agent_id) else {
                continue;
            };
            if agent.disconnected_since.is_some()
                || agent.link.is_closed()
                || agent.drain.deactivated
            {
                continue;
            }
            let mut available = agent.available();
            if available.is_empty() {
                continue;
            }
            let unavailability = self.unavailability_of(agent_id);
            let hostname = agent.info.hostname.clone();
            let attributes = agent.info.attributes.clone();
            let agent_url = agent.url.clone();
            for (framework_id, role) in ledger.order(&candidates) {
                if !allocatable(&available) {
                    break;
                }
                let Some(framework) = self.frameworks.get_mut(&framework_id) else {
                    continue;
                };
                let gpu = framework.has_capability(FrameworkCapability::GpuResources);
                let multi_role = framework.has_capability(FrameworkCapability::MultiRole);
                if !passes_constraints(
                    framework.offer_constraints.as_ref(),
                    &role,
                    &hostname,
                    &attributes,
                ) {
                    continue;
                }
                {
                    let share = available.filter(|r| {
                        resources::allocatable_to(r, &role) && (gpu || r.name != "gpus")
                    });
                    let share = ledger.cap(&role, &share);
                    if !worth_offering(framework, &role, &share)
                        || framework.is_filtered(agent_id, &role, &share, now)
                    {
                        continue;
                    }
                    ledger.charge(&framework_id, &role, share.as_slice());
                    available.subtract_all(share.as_slice());
                    let offer_id = format!("{}-O{}", self.master_info.id, self.next_offer);
                    self.next_offer += 1;
                    let offer = Offer {
                        id: OfferId {
                            value: offer_id.clone(),
                        },
                        framework_id: FrameworkId {
                            value: framework_id.clone(),
                        },
                        agent_id: AgentId {
                            value: agent_id.clone(),
                        },
                        hostname: hostname.clone(),
                        url: agent_url_info(&agent_url, &hostname),
                        domain: None,
                        resources: share
                            .as_slice()
                            .iter()
                            .map(|r| resources::for_offer(r, &role, multi_role))
                            .collect(),
                        attributes: attributes.clone(),
                        executor_ids: framework
                            .executors
                            .keys()
                            .filter(|(a, _)| a == agent_id)
                            .map(|(_, e)| ExecutorId { value: e.clone() })
                            .collect(),
                        unavailability,
                        allocation_info: multi_role.then(|| v1::resource::AllocationInfo {
                            role: Some(role.clone()),
                        }),
                    };
                    framework.offers.insert(offer_id.clone());
                    made.entry(framework_id.clone()).or_default().push(offer);
                    self.offers.insert(
                        offer_id,
                        OfferEntry {
                            framework_id: framework_id.clone(),
                            agent_id: agent_id.clone(),
                            role: role.clone(),
                            resources: share.into_vec(),
                        },
                    );
                }
            }
            if let Some(agent) = self.agents.get_mut(agent_id) {
                let mut offered = agent.total.clone();
                offered.subtract_all(agent.used.as_slice());
                offered.subtract_all(available.as_slice());
                agent.offered = offered;
            }
        }
        for (framework_id, offers) in made {
            if let Some(timeout) = self.config.offer_timeout {
                for offer in &offers {
                    spawn_offer_timeout(shared, offer.id.value.clone(), timeout);
                }
            }
            if let Some(framework) = self.frameworks.get(&framework_id) {
                framework.send(&scheduler::Event {
                    r#type: Some(scheduler::event::Type::Offers as i32),
                    offers: Some(event::Offers { offers }),
                    ..Default::default()
                });
            }
        }
    }
}

pub(super) fn allocatable(resources: &Resources) -> bool {
    resources.scalar("cpus") >= 0.01 || resources.scalar("mem") >= 32.0
}

pub(super) fn agent_url_info(url: &str, hostname: &str) -> Option<v1::Url> {
    let rest = url.strip_prefix("http://")?;
    let (host, port) = rest.rsplit_once(':')?;
    Some(v1::Url {
        scheme: "http".into(),
        address: v1::Address {
            hostname: Some(hostname.to_string()),
            ip: Some(host.to_string()),
            port: port.trim_end_matches('/').parse().ok()?,
        },
        path: Some("/slave(1)".into()),
        query: Vec::new(),
        fragment: None,
    })
}

pub(super) fn spawn_offer_timeout(shared: &Arc<Shared>, offer_id: String, timeout: Duration) {
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(timeout) => {}
            _ = shared.shutdown.cancelled() => return,
        }
        let mut state = shared.lock();
        if state.offers.contains_key(&offer_id) {
            tracing::debug!(offer = %offer_id, "offer timed out");
            state.rescind_offer(&offer_id);
        }
    });
}

/// Runs the allocator every allocation interval (refuse filters expire between events).
pub(crate) async fn run_allocation_ticks(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(shared.config.allocation_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let mut state = shared.lock();
                state.check_agents();
                state.resend_operation_updates();
                state.allocate(&shared);
            }
            _ = shared.shutdown.cancelled() => return,
        }
    }
}
