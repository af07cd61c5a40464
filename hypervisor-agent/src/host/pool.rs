//! Pools: suspended domains of a template kept ready, filled and drained one domain at a time,
//! warmed up until their proxies answer, and their figures in the data model.

use std::net::Ipv4Addr;

use cwmp::Value;

use datamodel::virtualization::{Pool, PoolStatus, Template};

use super::{row, During, Host, Result};
use crate::compute::DomState;
use crate::state::{Slot, SlotUse};

impl Host {
    /// One unit of pool work: creates one pooled domain for a pool below its target, or
    /// destroys one of a pool above it. Whether anything was done (call again until not).
    pub fn pool_step(&mut self) -> Result<bool> {
        if self.warm_step()? {
            self.update_pools();
            return Ok(true);
        }
        let slots = self.state.slots()?;
        for k in self.model.root().instances(Pool::TABLE) {
            let pool = Pool::at(k);
            let enabled = matches!(self.value(&pool.enable()), Some(Value::Boolean(true)));
            let target = if enabled { self.uint(&pool.target_size()) as usize } else { 0 };
            let pooled: Vec<&Slot> = slots
                .iter()
                .filter(|s| s.pool == Some(k) && matches!(s.usage, SlotUse::Pooled | SlotUse::Warming))
                .collect();
            if pooled.len() > target {
                if let Some(victim) = pooled.last() {
                    self.set_pool_status(k, PoolStatus::Draining);
                    let victim = (*victim).clone();
                    self.destroy_slot(&victim)?;
                    self.update_pools();
                    return Ok(true);
                }
            }
            if pooled.len() < target {
                let Some(template) = row(Template::split, &self.string(&pool.template())) else {
                    self.set_pool_status(k, PoolStatus::Error);
                    continue;
                };
                self.set_pool_status(k, PoolStatus::Filling);
                if let Err(e) = self.fill_one(k, template) {
                    self.set_pool_status(k, PoolStatus::Error);
                    return Err(e);
                }
                self.update_pools();
                return Ok(true);
            }
        }
        // Nothing to do: the pools' figures are refreshed by converge and by the periodic
        // refresh, not after every request the host thread serves.
        Ok(false)
    }

    fn fill_one(&mut self, pool: u32, template: u32) -> Result<()> {
        let park = self.vlan.lan_nic(None).during("choosing the LAN bridge")?;
        let mgmt = |id: u32| self.mgmt_address(id);
        let slot = self.state.new_slot(&self.cfg.agent_id, template, Some(pool), &mgmt, &Self::secret())?;
        let spec = self.spec(&slot, &park)?;
        self.compose_image(&spec, &slot)?;
        self.define_domain(&spec)?;
        self.compute.start(&slot.domain).during("starting the domain")?;
        if self.cfg.pool_warmup.is_some() {
            self.state.set_slot(slot.id, SlotUse::Warming, None)?;
            self.warming.insert(slot.id, std::time::Instant::now());
            tracing::info!(pool, slot = slot.id, "started a pool instance; suspending it once it has booted");
        } else {
            self.compute.suspend(&slot.domain).during("suspending the domain")?;
            self.state.set_slot(slot.id, SlotUse::Pooled, None)?;
            tracing::info!(pool, slot = slot.id, "pooled a suspended instance");
        }
        Ok(())
    }

    /// Suspends the warming pool domains whose proxies answer (they have booted), and replaces
    /// those that did not within the warm-up time. Whether anything changed.
    fn warm_step(&mut self) -> Result<bool> {
        let Some(limit) = self.cfg.pool_warmup else { return Ok(false) };
        let mut changed = false;
        for slot in self.state.slots()?.into_iter().filter(|s| s.usage == SlotUse::Warming) {
            let since = *self.warming.entry(slot.id).or_insert_with(std::time::Instant::now);
            let ip = slot.mgmt_address.split('/').next().unwrap_or("");
            let answers = ip
                .parse::<Ipv4Addr>()
                .map(|ip| {
                    let addr = std::net::SocketAddr::from((ip, self.cfg.proxy_port));
                    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300)).is_ok()
                })
                .unwrap_or(false);
            if answers {
                self.compute.suspend(&slot.domain).during("suspending the domain")?;
                self.state.set_slot(slot.id, SlotUse::Pooled, None)?;
                self.warming.remove(&slot.id);
                tracing::info!(
                    pool = slot.pool,
                    slot = slot.id,
                    boot_ms = since.elapsed().as_millis() as u64,
                    "pooled a booted instance, suspended"
                );
                changed = true;
            } else if since.elapsed() > limit {
                tracing::error!(
                    pool = slot.pool,
                    slot = slot.id,
                    "its proxy did not answer within {} s of the start; destroying it (the pool makes another)",
                    limit.as_secs()
                );
                self.warming.remove(&slot.id);
                self.destroy_slot(&slot)?;
                changed = true;
            }
        }
        Ok(changed)
    }

    fn set_pool_status(&mut self, k: u32, status: PoolStatus) {
        self.set_internal(&Pool::at(k).status(), Value::String(status.as_str().into()));
    }

    /// Ready, Suspended and Status of every pool, from the slots.
    pub(super) fn update_pools(&mut self) {
        let Ok(slots) = self.state.slots() else { return };
        for k in self.model.root().instances(Pool::TABLE) {
            let pool = Pool::at(k);
            let pooled: Vec<&Slot> = slots.iter().filter(|s| s.pool == Some(k) && s.usage == SlotUse::Pooled).collect();
            let warming = slots.iter().filter(|s| s.pool == Some(k) && s.usage == SlotUse::Warming).count();
            let suspended =
                pooled.iter().filter(|s| matches!(self.compute.state(&s.domain), Ok(Some(DomState::Paused)))).count();
            let enabled = matches!(self.value(&pool.enable()), Some(Value::Boolean(true)));
            let target = if enabled { self.uint(&pool.target_size()) as usize } else { 0 };
            let status = match (enabled, (pooled.len() + warming).cmp(&target)) {
                (_, std::cmp::Ordering::Equal) if warming > 0 => PoolStatus::Filling,
                (false, std::cmp::Ordering::Equal) => PoolStatus::Disabled,
                (_, std::cmp::Ordering::Less) => PoolStatus::Filling,
                (_, std::cmp::Ordering::Greater) => PoolStatus::Draining,
                (true, std::cmp::Ordering::Equal) => PoolStatus::Idle,
            };
            let keep_error =
                self.string(&pool.status()) == PoolStatus::Error.as_str() && pooled.len() + warming != target;
            self.set_internal(&pool.ready(), Value::UnsignedInt(pooled.len() as u32));
            self.set_internal(&pool.suspended(), Value::UnsignedInt(suspended as u32));
            if !keep_error {
                self.set_pool_status(k, status);
            }
        }
    }
}
