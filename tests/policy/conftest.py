"""Policy test fixtures: the default schema and policy, and a small test policy."""

from __future__ import annotations

import pytest

from custodes.policy import Policy
from custodes.schema import Schema

# A policy small enough to reason about in each test; it exercises every grant option.
TEST_POLICY = """
timezone = "Asia/Shanghai"

[purposes.registration]
description = "Registering reports."
[purposes.identity_check]
description = "Checking who someone is."
[purposes.criminal_investigation]
description = "Investigating under a case."
[purposes.lawful_intercept]
description = "Locating a phone under warrant."

[[grants]]
role = "registrar"
purpose = "registration"
actions = ["put"]
collections = ["*"]
fields = ["*"]

[[grants]]
role = "duty_officer"
purpose = "identity_check"
actions = ["get", "find"]
collections = ["identity"]
fields = ["name", "id_number", "birth_date"]
max_subjects_per_day = 2
hours = "08:00-20:00"

[[grants]]
role = "night_officer"
purpose = "identity_check"
actions = ["get"]
collections = ["identity"]
fields = ["name"]
hours = "22:00-06:00"

[[grants]]
role = "investigator"
purpose = "criminal_investigation"
actions = ["get", "find"]
collections = ["identity", "flights"]
fields = ["*"]
requires_case = true
requires_approval = "supervisor"
max_subjects_per_day = 3
break_glass = true

[[grants]]
role = "investigator"
purpose = "criminal_investigation"
actions = ["get"]
collections = ["bank_deposits"]
fields = ["*"]
requires_case = true
requires_approval = "director"

[[grants]]
role = "intercept_operator"
purpose = "lawful_intercept"
actions = ["get"]
collections = ["phone_location"]
fields = ["*"]
requires_case = true
requires_approval = "director"
"""


@pytest.fixture(scope="session")
def schema() -> Schema:
    """The schema packaged with custodes."""
    return Schema.default()


@pytest.fixture(scope="session")
def default_policy(schema: Schema) -> Policy:
    """The policy packaged with custodes."""
    return Policy.default(schema)


@pytest.fixture(scope="session")
def policy(schema: Schema) -> Policy:
    """The small test policy above."""
    return Policy.loads(TEST_POLICY, schema=schema, source="test-policy.toml")
