"""Typed configuration of the platform (`configs/*.yaml`)."""

from oms.config.errors import ConfigError, Problem
from oms.config.loader import DEFAULT_CONFIG_DIR, PROJECT_ROOT, Config, load_config
from oms.config.models import AccountConfig, AccountRiskLimits, GlobalRiskLimits, RiskConfig

__all__ = [
    "AccountConfig",
    "AccountRiskLimits",
    "Config",
    "ConfigError",
    "DEFAULT_CONFIG_DIR",
    "GlobalRiskLimits",
    "PROJECT_ROOT",
    "Problem",
    "RiskConfig",
    "load_config",
]
