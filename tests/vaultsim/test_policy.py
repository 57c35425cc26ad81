"""The policy language and Vault's rule priorities, without HTTP."""

from __future__ import annotations

import pytest

from .common import VaultError
from .policy import Acl, parse_policy


def acl(*policies: str) -> Acl:
    return Acl(parse_policy(text) for text in policies)


def test_parses_comments_extra_keys_and_legacy_shorthand() -> None:
    rules = parse_policy(
        """
        # comment
        // another
        /* and a
           block */
        path "secret/data/a" {
          capabilities = ["read", "list",]
          allowed_parameters = { "*" = [] }
          min_wrapping_ttl = "1s"
        }
        path "secret/data/b" { policy = "write" }
        """
    )
    assert [(r.pattern, sorted(r.capabilities)) for r in rules] == [
        ("secret/data/a", ["list", "read"]),
        ("secret/data/b", ["create", "delete", "list", "read", "update"]),
    ]


@pytest.mark.parametrize(
    "text",
    [
        'path "x" { capabilities = ["read"]',
        'path "x" { capabilities = ["own"] }',
        'path "x" { capabilities = "read" }',
        'paths "x" { capabilities = ["read"] }',
        "path x { }",
    ],
)
def test_rejects_malformed_policies(text: str) -> None:
    with pytest.raises(VaultError) as failed:
        parse_policy(text)
    assert failed.value.status == 400
    assert failed.value.errors[0].startswith("failed to parse policy")


def test_glob_and_segment_wildcards() -> None:
    rules = acl('path "secret/data/tenants/+/shared/*" { capabilities = ["read"] }')
    assert rules.allows("secret/data/tenants/A/shared/x", "read")
    assert rules.allows("secret/data/tenants/A/shared/x/y", "read")
    assert not rules.allows("secret/data/tenants/A/B/shared/x", "read")
    assert not rules.allows("secret/data/tenants/A/other", "read")
    assert not rules.allows("secret/data/tenants/A/shared/x", "update")


def test_most_specific_rule_wins_and_deny_beats_everything() -> None:
    rules = acl(
        'path "secret/*" { capabilities = ["read", "list"] }',
        'path "secret/data/tenants/*" { capabilities = ["create", "update"] }',
        'path "secret/+/tenants/A/x" { capabilities = ["delete"] }',
        'path "secret/data/tenants/A/locked" { capabilities = ["deny"] }',
        'path "secret/data/tenants/A/locked" { capabilities = ["read"] }',
    )
    # The pattern whose first wildcard comes later has priority...
    assert rules.capabilities("secret/data/tenants/A/y") == {"create", "update"}
    assert rules.capabilities("secret/data/tenants/A/x") == {"create", "update"}
    # ... at the same position, one not ending in * beats a glob ...
    assert rules.capabilities("secret/metadata/tenants/A/x") == {"delete"}
    # ... and an exact path beats every pattern; merged with deny it grants nothing.
    assert rules.capabilities("secret/data/tenants/A/locked") == frozenset()
    assert rules.capabilities("secret/metadata/other") == {"read", "list"}
    assert rules.capabilities("sys/policies/acl/x") == frozenset()


def test_same_path_in_several_policies_is_merged() -> None:
    rules = acl(
        'path "secret/data/a/*" { capabilities = ["read"] }',
        'path "secret/data/a/*" { capabilities = ["update"] }',
    )
    assert rules.capabilities("secret/data/a/k") == {"read", "update"}


def test_sudo_is_needed_where_asked() -> None:
    rules = acl(
        'path "sys/auth/*" { capabilities = ["update"] }',
        'path "sys/auth/approle" { capabilities = ["update", "sudo"] }',
    )
    assert not rules.allows("sys/auth/other", "update", sudo=True)
    assert rules.allows("sys/auth/approle", "update", sudo=True)
