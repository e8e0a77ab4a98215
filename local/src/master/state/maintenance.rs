//! Maintenance, as the Mesos master runs it: the operator's schedule of unavailability windows
//! for machines (UPDATE_MAINTENANCE_SCHEDULE), machines going DOWN (START_MAINTENANCE) and UP
//! again (STOP_MAINTENANCE), and the inverse offers that ask frameworks with tasks or executors
//! on a DRAINING machine's agents to vacate them, with their answers (ACCEPT_INVERSE_OFFERS,
//! DECLINE_INVERSE_OFFERS) shown by GET_MAINTENANCE_STATUS.
//!
//! A machine (`MachineID`) matches an agent when its `hostname` (if given) equals the agent's
//! hostname, case-insensitively, and its `ip` (if given) equals the agent's address. Offers of
//! the agents of a DRAINING machine carry the window's `unavailability`. Each framework gets one
//! inverse offer per agent at a time (with no resources: the whole agent, as the Mesos allocator
//! sends them); once it has answered for a machine it gets no more for it until the machine
//! leaves the schedule. Agents of a DOWN machine are removed (their tasks become
//! TASK_GONE_BY_OPERATOR, TASK_LOST without PARTITION_AWARE), told to shut down, and refused
//! while the machine is DOWN. Not imitated: inverse offer filters (see `draining` for
//! DRAIN_AGENT).

use mesos_sdk::v1::allocator::{InverseOfferStatus, inverse_offer_status};
use mesos_sdk::v1::maintenance::{ClusterStatus, Schedule, cluster_status};
use mesos_sdk::v1::{InverseOffer, MachineId, Unavailability};

use super::*;

/// A machine as a map key: lower-cased hostname and ip, empty when absent.
type MachineKey = (String, String);

fn key(machine: &MachineId) -> MachineKey {
    (
        machine.hostname.clone().unwrap_or_default().to_lowercase(),
        machine.ip.clone().unwrap_or_default(),
    )
}

/// How the operator API names a machine in its error texts.
fn describe(machine: &MachineId) -> String {
    format!(
        "{} ({})",
        machine.hostname.as_deref().unwrap_or(""),
        machine.ip.as_deref().unwrap_or("")
    )
}

/// The maintenance state of the master.
#[derive(Debug, Default)]
pub(crate) struct Maintenance {
    schedule: Schedule,
    down: Vec<MachineId>,
    /// Answers to inverse offers by machine and framework id.
    statuses: HashMap<(MachineKey, String), InverseOfferStatus>,
    /// Outstanding inverse offers by id.
    outstanding: HashMap<String, InverseEntry>,
}

#[derive(Debug)]
struct InverseEntry {
    framework_id: String,
    agent_id: String,
    machine: MachineKey,
}

impl Maintenance {
    fn is_down(&self, machine: &MachineKey) -> bool {
        self.down.iter().any(|m| key(m) == *machine)
    }

    /// The scheduled machine and its window's unavailability for an agent, if any.
    fn window_of(&self, agent: &Agent) -> Option<(MachineKey, Unavailability)> {
        self.schedule.windows.iter().find_map(|window| {
            window
                .machine_ids
                .iter()
                .find(|m| machine_matches(m, agent))
                .map(|m| (key(m), window.unavailability))
        })
    }
}

/// The agent's address, from its URL (`http://IP:PORT`).
fn agent_ip(agent: &Agent) -> &str {
    let rest = agent.url.strip_prefix("http://").unwrap_or(&agent.url);
    rest.rsplit_once(':').map_or(rest, |(host, _)| host)
}

fn machine_matches(machine: &MachineId, agent: &Agent) -> bool {
    let hostname_ok = machine
        .hostname
        .as_deref()
        .is_none_or(|h| h.eq_ignore_ascii_case(&agent.info.hostname));
    let ip_ok = machine.ip.as_deref().is_none_or(|ip| ip == agent_ip(agent));
    (machine.hostname.is_some() || machine.ip.is_some()) && hostname_ok && ip_ok
}

impl State {
    /// UPDATE_MAINTENANCE_SCHEDULE. `Err` carries the 400 text.
    pub fn update_maintenance_schedule(&mut self, schedule: Schedule) -> Result<(), String> {
        let mut seen = HashSet::new();
        for window in &schedule.windows {
            if window.machine_ids.is_empty() {
                return Err("List of machines in the maintenance window is empty".into());
            }
            for machine in &window.machine_ids {
                if machine.hostname.as_deref().unwrap_or("").is_empty()
                    && machine.ip.as_deref().unwrap_or("").is_empty()
                {
                    return Err("Both 'hostname' and 'ip' for a machine are empty".into());
                }
                if !seen.insert(key(machine)) {
                    return Err(format!(
                        "Machine '{}' appears more than once in the schedule",
                        describe(machine)
                    ));
                }
            }
        }
        if let Some(down) = self
            .maintenance
            .down
            .iter()
            .find(|m| !seen.contains(&key(m)))
        {
            return Err(format!(
                "Machine '{}' is deactivated and cannot be removed from the schedule",
                describe(down)
            ));
        }
        self.maintenance.schedule = schedule;
        self.maintenance
            .statuses
            .retain(|(machine, _), _| seen.contains(machine));
        let stale: Vec<String> = self
            .maintenance
            .outstanding
            .iter()
            .filter(|(_, e)| !seen.contains(&e.machine))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.rescind_inverse_offer(&id);
        }
        self.send_inverse_offers();
        Ok(())
    }

    /// START_MAINTENANCE: the machines go DOWN. `Err` carries the 400 text.
    pub fn start_maintenance(&mut self, machines: &[MachineId]) -> Result<(), String> {
        if machines.is_empty() {
            return Err("List of machines is empty".into());
        }
        for machine in machines {
            let scheduled = self
                .maintenance
                .schedule
                .windows
                .iter()
                .flat_map(|w| &w.machine_ids)
                .any(|m| key(m) == key(machine));
            if !scheduled || self.maintenance.is_down(&key(machine)) {
                return Err(format!(
                    "Machine '{}' is not in DRAINING mode and cannot be brought down",
                    describe(machine)
                ));
            }
        }
        for machine in machines {
            self.maintenance.down.push(machine.clone());
            let agents: Vec<String> = self
                .agents
                .values()
                .filter(|a| machine_matches(machine, a))
                .map(|a| a.id.clone())
                .collect();
            for agent_id in agents {
                self.remove_agent_by_operator(
                    &agent_id,
                    "Agent is in maintenance (its machine is DOWN)",
                );
            }
            let machine = key(machine);
            let stale: Vec<String> = self
                .maintenance
                .outstanding
                .iter()
                .filter(|(_, e)| e.machine == machine)
                .map(|(id, _)| id.clone())
                .collect();
            for id in stale {
                self.rescind_inverse_offer(&id);
            }
        }
        Ok(())
    }

    /// STOP_MAINTENANCE: the machines are UP and leave the schedule. `Err` carries the 400 text.
    pub fn stop_maintenance(&mut self, machines: &[MachineId]) -> Result<(), String> {
        if machines.is_empty() {
            return Err("List of machines is empty".into());
        }
        if let Some(machine) = machines.iter().find(|m| !self.maintenance.is_down(&key(m))) {
            return Err(format!(
                "Machine '{}' is not in DOWN mode and cannot be brought up",
                describe(machine)
            ));
        }
        let up: HashSet<MachineKey> = machines.iter().map(key).collect();
        self.maintenance.down.retain(|m| !up.contains(&key(m)));
        for window in &mut self.maintenance.schedule.windows {
            window.machine_ids.retain(|m| !up.contains(&key(m)));
        }
        self.maintenance
            .schedule
            .windows
            .retain(|w| !w.machine_ids.is_empty());
        self.maintenance
            .statuses
            .retain(|(machine, _), _| !up.contains(machine));
        Ok(())
    }

    /// GET_MAINTENANCE_SCHEDULE.
    pub fn maintenance_schedule(&self) -> Schedule {
        self.maintenance.schedule.clone()
    }

    /// GET_MAINTENANCE_STATUS: DRAINING machines with the frameworks' answers, DOWN machines.
    pub fn maintenance_status(&self) -> ClusterStatus {
        let draining_machines = self
            .maintenance
            .schedule
            .windows
            .iter()
            .flat_map(|w| &w.machine_ids)
            .filter(|m| !self.maintenance.is_down(&key(m)))
            .map(|m| {
                let machine = key(m);
                let mut statuses: Vec<InverseOfferStatus> = self
                    .maintenance
                    .statuses
                    .iter()
                    .filter(|((k, _), _)| *k == machine)
                    .map(|(_, s)| s.clone())
                    .collect();
                statuses.sort_by(|a, b| a.framework_id.value.cmp(&b.framework_id.value));
                cluster_status::DrainingMachine {
                    id: m.clone(),
                    statuses,
                }
            })
            .collect();
        ClusterStatus {
            draining_machines,
            down_machines: self.maintenance.down.clone(),
        }
    }

    /// Whether an agent may register: not while its machine is DOWN.
    pub(super) fn on_down_machine(&self, info: &AgentInfo, url: &str) -> bool {
        let probe_ip = url
            .strip_prefix("http://")
            .and_then(|r| r.rsplit_once(':'))
            .map_or("", |(host, _)| host);
        self.maintenance.down.iter().any(|m| {
            (m.hostname.is_some() || m.ip.is_some())
                && m.hostname
                    .as_deref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(&info.hostname))
                && m.ip.as_deref().is_none_or(|ip| ip == probe_ip)
        })
    }

    /// The unavailability to put on offers of `agent_id`, if its machine is DRAINING.
    pub(super) fn unavailability_of(&self, agent_id: &str) -> Option<Unavailability> {
        let agent = self.agents.get(agent_id)?;
        self.maintenance.window_of(agent).map(|(_, u)| u)
    }

    /// ACCEPT_INVERSE_OFFERS and DECLINE_INVERSE_OFFERS: records the framework's answer for the
    /// machine of each of its outstanding inverse offers named.
    pub(super) fn answer_inverse_offers(
        &mut self,
        framework_id: &str,
        offer_ids: &[OfferId],
        accept: bool,
    ) {
        let status = if accept {
            inverse_offer_status::Status::Accept
        } else {
            inverse_offer_status::Status::Decline
        };
        for offer_id in offer_ids {
            let owned = self
                .maintenance
                .outstanding
                .get(&offer_id.value)
                .is_some_and(|e| e.framework_id == framework_id);
            if !owned {
                tracing::debug!(offer = %offer_id.value, "answer to an unknown inverse offer ignored");
                continue;
            }
            let Some(entry) = self.maintenance.outstanding.remove(&offer_id.value) else {
                continue;
            };
            self.maintenance.statuses.insert(
                (entry.machine, framework_id.to_string()),
                InverseOfferStatus {
                    status: status as i32,
                    framework_id: FrameworkId {
                        value: framework_id.to_string(),
                    },
                    timestamp: operator::time_info(now_secs()),
                },
            );
        }
    }

    fn rescind_inverse_offer(&mut self, offer_id: &str) {
        let Some(entry) = self.maintenance.outstanding.remove(offer_id) else {
            return;
        };
        if let Some(framework) = self.frameworks.get(&entry.framework_id) {
            framework.send(&scheduler::Event {
                r#type: Some(scheduler::event::Type::RescindInverseOffer as i32),
                rescind_inverse_offer: Some(event::RescindInverseOffer {
                    inverse_offer_id: OfferId {
                        value: offer_id.to_string(),
                    },
                }),
                ..Default::default()
            });
        }
    }

    /// Sends inverse offers for the agents of DRAINING machines to the connected frameworks
    /// with tasks or executors there that have none outstanding and have not answered yet.
    pub(super) fn send_inverse_offers(&mut self) {
        // Offers to frameworks that went away are void; they get new ones when back.
        let frameworks = &self.frameworks;
        self.maintenance.outstanding.retain(|_, e| {
            frameworks
                .get(&e.framework_id)
                .is_some_and(|f| f.connected() && f.active)
        });
        if self.maintenance.schedule.windows.is_empty() {
            return;
        }
        let mut made: HashMap<String, Vec<InverseOffer>> = HashMap::new();
        for agent_id in self.agent_order.clone() {
            let Some(agent) = self.agents.get(&agent_id) else {
                continue;
            };
            let Some((machine, unavailability)) = self.maintenance.window_of(agent) else {
                continue;
            };
            if self.maintenance.is_down(&machine) {
                continue;
            }
            let url = allocator::agent_url_info(&agent.url, &agent.info.hostname);
            let mut users: Vec<&Framework> = self
                .frameworks
                .values()
                .filter(|f| f.connected() && f.active)
                .filter(|f| {
                    f.tasks
                        .values()
                        .any(|t| t.agent_id.value == agent_id && !is_terminal(t.state))
                        || f.executors.keys().any(|(a, _)| *a == agent_id)
                })
                .collect();
            users.sort_by(|a, b| a.id.cmp(&b.id));
            let mut new = Vec::new();
            for framework in users {
                let answered = self
                    .maintenance
                    .statuses
                    .contains_key(&(machine.clone(), framework.id.clone()));
                let outstanding = self
                    .maintenance
                    .outstanding
                    .values()
                    .any(|e| e.agent_id == agent_id && e.framework_id == framework.id);
                if answered || outstanding {
                    continue;
                }
                new.push(framework.id.clone());
            }
            for framework_id in new {
                let offer_id = format!("{}-O{}", self.master_info.id, self.next_offer);
                self.next_offer += 1;
                self.maintenance.outstanding.insert(
                    offer_id.clone(),
                    InverseEntry {
                        framework_id: framework_id.clone(),
                        agent_id: agent_id.clone(),
                        machine: machine.clone(),
                    },
                );
                made.entry(framework_id.clone())
                    .or_default()
                    .push(InverseOffer {
                        id: OfferId { value: offer_id },
                        url: url.clone(),
                        framework_id: FrameworkId {
                            value: framework_id,
                        },
                        agent_id: Some(AgentId {
                            value: agent_id.clone(),
                        }),
                        unavailability,
                        resources: Vec::new(),
                    });
            }
        }
        for (framework_id, inverse_offers) in made {
            if let Some(framework) = self.frameworks.get(&framework_id) {
                framework.send(&scheduler::Event {
                    r#type: Some(scheduler::event::Type::InverseOffers as i32),
                    inverse_offers: Some(event::InverseOffers { inverse_offers }),
                    ..Default::default()
                });
            }
        }
    }
}
