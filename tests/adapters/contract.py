"""The adapter contract suite: every adapter's tests inherit :class:`AdapterContract`.

A subclass supplies two things, pointed at real emulator processes or stateful fakes:

* an ``adapter`` fixture returning a fresh adapter whose target holds nothing yet
  (fixture scope: function);
* ``stored_objects(adapter) -> list[str]``: every object in the target's artifact store
  (bucket keys, repository files), used to prove that rejected input uploaded nothing.

Two versions are deployed throughout: v1 is TF Serving's half_plus_two (y = 0.5x + 2) and
v2 the linear example (y = 2x + 1), so a prediction tells which version answered. A target
whose fake cannot run models must answer predictions the way those models would, keyed by
the version actually routed to.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cloudserve.adapter import Adapter
from cloudserve.errors import CloudserveError, ConfigError, NotFound, NotSupported
from cloudserve.records import DeploySpec, ExportInfo

PAYLOAD = {"instances": [[1.0]]}
ANSWERS = {"1": [[2.5]], "2": [[3.0]]}


def predictions(response: dict) -> list:
    return response["predictions"]


class AdapterContract:
    model = "contract-model"
    target = ""  # set by the subclass: the adapter's registry name

    def stored_objects(self, adapter: Adapter) -> list[str]:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    def spec(self, export: ExportInfo, version: str, **kw) -> DeploySpec:
        return DeploySpec(
            model=self.model, export=export.path, version=version, target=self.target, **kw
        )

    def deploy_both(self, adapter: Adapter, export_v1: ExportInfo, export_v2: ExportInfo):
        r1 = adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        r2 = adapter.deploy(self.spec(export_v2, "2"), export_v2, timeout=120)
        return r1, r2

    def default_of(self, adapter: Adapter) -> str:
        defaults = [v.version for v in adapter.list_versions(self.model) if v.is_default]
        assert len(defaults) == 1, f"exactly one default expected, got {defaults}"
        return defaults[0]

    # ------------------------------------------------------------------ the contract

    def test_plan_has_no_side_effects(self, adapter, export_v1):
        plan = adapter.plan(self.spec(export_v1, "1"), export_v1)
        assert plan.model == self.model and plan.version == "1"
        assert plan.changes_anything
        assert self.stored_objects(adapter) == []
        with pytest.raises(NotFound):
            adapter.list_versions(self.model)

    def test_first_version_becomes_default(self, adapter, export_v1):
        record = adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        assert record.version == "1" and record.state == "AVAILABLE"
        assert record.is_default and record.changed
        assert self.default_of(adapter) == "1"
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["1"]

    def test_second_version_waits_for_set_default(self, adapter, export_v1, export_v2):
        _, r2 = self.deploy_both(adapter, export_v1, export_v2)
        assert not r2.is_default
        assert self.default_of(adapter) == "1"
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["1"]
        listed = adapter.list_versions(self.model)
        assert [v.version for v in listed] == ["2", "1"]  # newest first

    def test_set_default_routes_predictions(self, adapter, export_v1, export_v2):
        self.deploy_both(adapter, export_v1, export_v2)
        record = adapter.set_default(self.model, "2", timeout=120)
        assert record.version == "2" and record.is_default and record.traffic == 100
        assert self.default_of(adapter) == "2"
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["2"]

    def test_deploy_with_set_default(self, adapter, export_v1, export_v2):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        r2 = adapter.deploy(self.spec(export_v2, "2", set_default=True), export_v2, timeout=120)
        assert r2.is_default
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["2"]

    def test_predict_names_a_version(self, adapter, export_v1, export_v2):
        self.deploy_both(adapter, export_v1, export_v2)
        try:
            response = adapter.predict(self.model, PAYLOAD, version="2")
        except NotSupported:
            pytest.skip(f"{self.target} routes predictions only to the default version")
        assert predictions(response) == ANSWERS["2"]

    def test_set_default_unknown_version(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        with pytest.raises(NotFound):
            adapter.set_default(self.model, "99", timeout=60)
        assert self.default_of(adapter) == "1"

    def test_rollback_restores_previous_default(self, adapter, export_v1, export_v2):
        self.deploy_both(adapter, export_v1, export_v2)
        adapter.set_default(self.model, "2", timeout=120)
        record = adapter.rollback(self.model, timeout=120)
        assert record.version == "1" and record.is_default
        assert self.default_of(adapter) == "1"
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["1"]

    def test_rollback_without_history(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        with pytest.raises(NotFound):
            adapter.rollback(self.model, timeout=60)

    def test_redeploy_same_export_changes_nothing(self, adapter, export_v1):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        before = sorted(self.stored_objects(adapter))
        again = adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        assert not again.changed
        assert sorted(self.stored_objects(adapter)) == before
        assert [v.version for v in adapter.list_versions(self.model)] == ["1"]

    def test_redeploy_other_content_as_same_version_is_refused(self, adapter, export_v1, export_v2):
        adapter.deploy(self.spec(export_v1, "1"), export_v1, timeout=120)
        with pytest.raises(ConfigError):
            adapter.deploy(self.spec(export_v2, "1"), export_v2, timeout=120)
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["1"]

    def test_delete_version_is_idempotent(self, adapter, export_v1, export_v2):
        self.deploy_both(adapter, export_v1, export_v2)
        assert adapter.delete(self.model, "2")
        assert [v.version for v in adapter.list_versions(self.model)] == ["1"]
        assert adapter.delete(self.model, "2") == []
        assert predictions(adapter.predict(self.model, PAYLOAD)) == ANSWERS["1"]

    def test_delete_default_while_others_remain_is_refused(self, adapter, export_v1, export_v2):
        self.deploy_both(adapter, export_v1, export_v2)
        with pytest.raises(ConfigError):
            adapter.delete(self.model, "1")
        assert self.default_of(adapter) == "1"

    def test_delete_model_is_idempotent(self, adapter, export_v1, export_v2):
        self.deploy_both(adapter, export_v1, export_v2)
        assert adapter.delete(self.model)
        with pytest.raises(NotFound):
            adapter.list_versions(self.model)
        assert adapter.delete(self.model) == []

    def test_bad_input_rejected_before_any_upload(self, adapter, export_v1):
        bad = dataclasses.replace(self.spec(export_v1, "1"), model="Not a valid name!")
        with pytest.raises(CloudserveError):
            adapter.deploy(bad, export_v1, timeout=60)
        broken = dataclasses.replace(export_v1, path=Path("/nonexistent/export"))
        with pytest.raises(CloudserveError):
            adapter.deploy(self.spec(broken, "1"), broken, timeout=60)
        assert self.stored_objects(adapter) == []
