//! The plan: what the policy decided, and the checks every plan must pass before the host acts.

pub mod model;

use std::collections::HashMap;

use crate::facts::model::HostFacts;
use crate::policy::limits::Limits;
pub use model::{Decision, Level, Metadata, Notice, Plan, Reason, ServicePlan};

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no decision for service `{0}`")]
    MissingService(String),
    #[error("a decision for `{0}`, which is not one of the services")]
    UnknownService(String),
    #[error("{count} decisions for service `{service}` (exactly one is allowed)")]
    DuplicateService { service: String, count: usize },
    #[error("{count} notices (at most {limit} are allowed for {services} services)")]
    TooManyNotices { count: usize, limit: usize, services: usize },
    #[error("a notice of {len} bytes (at most {limit})")]
    MessageTooLong { len: usize, limit: usize },
    #[error("a notice about `{0}`, which is not one of the services")]
    NoticeUnknownService(String),
    #[error("{count} reasons for service `{service}` (at most {limit})")]
    TooManyReasons { service: String, count: usize, limit: usize },
    #[error("service `{service}`: reason `other` of {len} bytes (at most {limit})")]
    OtherReasonTooLong { service: String, len: usize, limit: usize },
    #[error("an order for group `{0}`, which is not one of the certificate groups")]
    UnknownGroup(String),
    #[error("{count} orders for group `{group}` (at most one is allowed)")]
    DuplicateOrder { group: String, count: usize },
}

/// Checks a plan against the facts it answers, and returns it with its decisions in the order
/// of `facts.services` (a policy may list them in any order).
pub fn validate(facts: &HostFacts, mut plan: Plan, limits: &Limits) -> Result<Plan, PlanError> {
    let services = facts.services.len();
    let position: HashMap<&str, usize> =
        facts.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    // Size first: a flood is refused before anything else is looked at.
    let limit = limits.max_notices(services);
    if plan.notices.len() > limit {
        return Err(PlanError::TooManyNotices { count: plan.notices.len(), limit, services });
    }
    let mut seen = vec![0usize; services];
    for decision in &plan.services {
        let index = *position
            .get(decision.service.as_str())
            .ok_or_else(|| PlanError::UnknownService(decision.service.clone()))?;
        seen[index] += 1;
        if decision.reasons.len() > limits.max_reasons {
            return Err(PlanError::TooManyReasons {
                service: decision.service.clone(),
                count: decision.reasons.len(),
                limit: limits.max_reasons,
            });
        }
        for reason in &decision.reasons {
            if let Reason::Other(text) = reason
                && text.len() > limits.max_other_reason_bytes
            {
                return Err(PlanError::OtherReasonTooLong {
                    service: decision.service.clone(),
                    len: text.len(),
                    limit: limits.max_other_reason_bytes,
                });
            }
        }
    }
    for (service, count) in facts.services.iter().zip(&seen) {
        match count {
            0 => return Err(PlanError::MissingService(service.name.clone())),
            1 => {}
            &count => {
                return Err(PlanError::DuplicateService { service: service.name.clone(), count });
            }
        }
    }
    for notice in &plan.notices {
        if notice.message.len() > limits.max_message_bytes {
            return Err(PlanError::MessageTooLong {
                len: notice.message.len(),
                limit: limits.max_message_bytes,
            });
        }
        if let Some(service) = &notice.service
            && !position.contains_key(service.as_str())
        {
            return Err(PlanError::NoticeUnknownService(service.clone()));
        }
    }
    for order in &plan.orders {
        if facts.group(&order.group).is_none() {
            return Err(PlanError::UnknownGroup(order.group.clone()));
        }
        let count = plan.orders.iter().filter(|o| o.group == order.group).count();
        if count > 1 {
            return Err(PlanError::DuplicateOrder { group: order.group.clone(), count });
        }
    }
    plan.services.sort_by_key(|d| position[d.service.as_str()]);
    // Orders in the groups' order, so the same plan in another order is the same plan.
    let group_position: HashMap<&str, usize> =
        facts.groups.iter().enumerate().map(|(i, g)| (g.name.as_str(), i)).collect();
    plan.orders.sort_by_key(|o| group_position[o.group.as_str()]);
    Ok(plan)
}

impl Plan {
    /// Whether the plan orders a certificate for `group`.
    pub fn orders_group(&self, group: &str) -> bool {
        self.orders.iter().any(|o| o.group == group)
    }

    /// The decision for a service, if the plan has one.
    pub fn decision(&self, service: &str) -> Option<&ServicePlan> {
        self.services.iter().find(|d| d.service == service)
    }
}
