"""The catalogue a fresh install ships (DOMAIN.md): metrics, and the Basic / Pro / Enterprise plans.

Used by the data migration that installs it and by tests that check the install against DOMAIN.md.
Admins edit the installed rows afterwards; this module is not read at run time.
"""

from decimal import Decimal

METRICS = [
    # key, label, unit, kind, display order
    ("seats", "Seats", "users", "limit", 1),
    ("storage_gb", "Storage", "GB", "limit", 2),
    ("integrations", "Integrations", "integrations", "limit", 3),
    ("api_calls", "API calls", "calls / month", "limit", 4),
    ("projects", "Projects", "projects", "limit", 5),
]

UNLIMITED = None

PLANS = [
    {
        "name": "Basic",
        "tier_rank": 1,
        "monthly_price": Decimal("29.00"),
        "annual_price": Decimal("290.00"),
        "description": "For small teams getting started.",
        "limits": {"seats": 5, "storage_gb": 10, "integrations": 3, "api_calls": 10_000, "projects": 10},
        "features": {"reporting": "Basic", "support": ""},
    },
    {
        "name": "Pro",
        "tier_rank": 2,
        "monthly_price": Decimal("99.00"),
        "annual_price": Decimal("990.00"),
        "description": "For growing teams that need more room and better reporting.",
        "limits": {"seats": 25, "storage_gb": 100, "integrations": 10, "api_calls": 100_000, "projects": 100},
        "features": {"reporting": "Advanced", "support": "Priority"},
    },
    {
        "name": "Enterprise",
        "tier_rank": 3,
        "monthly_price": Decimal("299.00"),
        "annual_price": Decimal("2990.00"),
        "description": "Unlimited scale, custom reporting and a dedicated team.",
        "limits": {
            "seats": UNLIMITED,
            "storage_gb": 1024,
            "integrations": UNLIMITED,
            "api_calls": UNLIMITED,
            "projects": UNLIMITED,
        },
        "features": {"reporting": "Custom", "support": "Dedicated"},
    },
]

FEATURES = [
    # key, label, display order
    ("reporting", "Reporting", 1),
    ("support", "Support", 2),
]
