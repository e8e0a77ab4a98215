//! The dispatcher of non-SUBSCRIBE scheduler calls: the stream-id and subscription checks Mesos
//! makes before a call runs, then one branch per call type into the other concerns.

use super::*;

impl State {
    /// Runs a validated non-SUBSCRIBE call from the framework that owns `stream_id`.
    pub fn call(
        &mut self,
        shared: &Arc<Shared>,
        call: Call,
        stream_id: Option<&str>,
        principal: Option<&str>,
    ) -> CallOutcome {
        let framework_id = call
            .framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let Some(framework) = self.frameworks.get(&framework_id) else {
            return CallOutcome::Error(StatusCode::BAD_REQUEST, "Framework cannot be found".into());
        };
        if let Some(principal) = principal {
            let declared = framework.info.principal.as_deref().unwrap_or("");
            if declared != principal {
                return CallOutcome::Error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Authenticated principal '{principal}' does not match principal '{declared}' used to subscribe"
                    ),
                );
            }
        }
        let Some(subscription) = &framework.subscription else {
            return CallOutcome::Error(StatusCode::FORBIDDEN, "Framework is not subscribed".into());
        };
        let Some(stream_id) = stream_id else {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into(),
            );
        };
        if stream_id != subscription.stream_id {
            return CallOutcome::Error(
                StatusCode::BAD_REQUEST,
                format!(
                    "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID {framework_id}"
                ),
            );
        }
        let kind = call.r#type.and_then(|t| call::Type::try_from(t).ok());
        match kind {
            Some(call::Type::Teardown) => {
                self.remove_framework(&framework_id);
            }
            Some(call::Type::Accept) => {
                let accept = call.accept.unwrap_or_default();
                self.accept(&framework_id, accept);
            }
            Some(call::Type::Decline) => {
                let decline = call.decline.unwrap_or_default();
                let refuse = decline.filters.as_ref().map_or(5.0, |f| f.refuse_seconds());
                for offer_id in decline.offer_ids {
                    self.decline_offer(&framework_id, &offer_id.value, refuse);
                }
            }
            Some(call::Type::Revive) => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                    if roles.is_empty() {
                        framework.suppressed_roles.clear();
                    } else {
                        for role in &roles {
                            framework.suppressed_roles.remove(role);
                        }
                    }
                    if roles.is_empty() {
                        framework.filters.clear();
                    } else {
                        framework
                            .filters
                            .retain(|(_, role), _| !roles.contains(role));
                    }
                }
                self.allocate(shared);
            }
            Some(call::Type::Suppress) => {
                let roles = call.suppress.map(|r| r.roles).unwrap_or_default();
                if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                    let roles = if roles.is_empty() {
                        framework.roles()
                    } else {
                        roles
                    };
                    framework.suppressed_roles.extend(roles);
                }
            }
            Some(call::Type::Kill) => {
                if let Some(kill) = call.kill {
                    self.kill(&framework_id, kill);
                }
            }
            Some(call::Type::Shutdown) => {
                if let Some(shutdown) = call.shutdown {
                    if let Some(agent) = self.agents.get(&shutdown.agent_id.value) {
                        agent.send(ToAgent::ShutdownExecutor {
                            framework_id: FrameworkId {
                                value: framework_id.clone(),
                            },
                            executor_id: shutdown.executor_id,
                        });
                    }
                }
            }
            Some(call::Type::Acknowledge) => {
                if let Some(ack) = call.acknowledge {
                    self.acknowledge(&framework_id, ack);
                }
            }
            Some(call::Type::AcknowledgeOperationStatus) => {
                if let Some(ack) = call.acknowledge_operation_status {
                    self.acknowledge_operation(&framework_id, ack);
                }
            }
            Some(call::Type::Reconcile) => {
                let tasks = call.reconcile.map(|r| r.tasks).unwrap_or_default();
                self.reconcile(&framework_id, tasks);
            }
            Some(call::Type::ReconcileOperations) => {
                let operations = call
                    .reconcile_operations
                    .map(|r| r.operations)
                    .unwrap_or_default();
                self.reconcile_operations(&framework_id, operations);
            }
            Some(call::Type::Message) => {
                if let Some(message) = call.message {
                    if let Some(agent) = self.agents.get(&message.agent_id.value) {
                        agent.send(ToAgent::FrameworkMessage {
                            framework_id: FrameworkId {
                                value: framework_id.clone(),
                            },
                            executor_id: message.executor_id,
                            data: message.data,
                        });
                    }
                }
            }
            Some(call::Type::Request) => {}
            Some(call::Type::AcceptInverseOffers) => {
                let ids = call
                    .accept_inverse_offers
                    .map(|a| a.inverse_offer_ids)
                    .unwrap_or_default();
                self.answer_inverse_offers(&framework_id, &ids, true);
            }
            Some(call::Type::DeclineInverseOffers) => {
                let ids = call
                    .decline_inverse_offers
                    .map(|d| d.inverse_offer_ids)
                    .unwrap_or_default();
                self.answer_inverse_offers(&framework_id, &ids, false);
            }
            Some(call::Type::UpdateFramework) => {
                let update = call.update_framework.unwrap_or_default();
                return self.update_framework(shared, &framework_id, update);
            }
            Some(call::Type::Subscribe) | Some(call::Type::Unknown) | None => {
                return CallOutcome::NotImplemented;
            }
        }
        CallOutcome::Accepted
    }
}
