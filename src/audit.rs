//! `ontab audit` (being written).

use crate::config::DatabaseConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub database: DatabaseConfig,
}

pub async fn run(_args: AuditArgs) -> anyhow::Result<()> {
    anyhow::bail!("ontab audit is not implemented yet")
}
