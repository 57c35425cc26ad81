"""The template renderer behaves as Go templates and Helm's functions do, for its subset."""

from __future__ import annotations

from typing import Any

import pytest

from tests.packaging.gotmpl import Chart, Renderer, TemplateError, go_float, merge_values


def render(source: str, values: dict[str, Any] | None = None, **extra: str) -> str:
    r = Renderer()
    for name, text in extra.items():
        r.add(name, text)
    r.add("t", source)
    ctx = {
        "Values": values or {},
        "Release": {"Name": "rel", "Namespace": "ns", "Service": "Helm"},
        "Chart": {"Name": "chart", "Version": "1.2.3", "AppVersion": "4.5.6"},
    }
    return r.render("t", ctx)


def test_fields_and_trim_markers() -> None:
    assert render("a: {{ .Values.x.y }}", {"x": {"y": "b"}}) == "a: b"
    assert render("a\n  {{- .Values.v }}  \nb", {"v": 1}) == "a1  \nb"
    assert render("a  {{ .Values.v -}}\n\n  b", {"v": True}) == "a  trueb"
    assert render("{{ .Release.Name }}/{{ .Chart.Name }}/{{ .Chart.AppVersion }}") == (
        "rel/chart/4.5.6"
    )
    assert render("x{{/* a comment */}}y{{- /* trimmed */ -}}  z") == "xyz"


def test_printing_a_missing_value_or_a_map_is_an_error() -> None:
    with pytest.raises(TemplateError, match="missing value"):
        render("{{ .Values.nope }}")
    with pytest.raises(TemplateError, match="nil pointer"):
        render("{{ .Values.nope.deeper }}")
    with pytest.raises(TemplateError, match="toYaml"):
        render("{{ .Values.m }}", {"m": {"a": 1}})


def test_if_else_if_with_and_go_truthiness() -> None:
    src = "{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}"
    assert render(src, {"a": 1, "b": 1}) == "A"
    assert render(src, {"a": 0, "b": "x"}) == "B"
    empties: list[Any] = ["", [], {}, False, None, 0]
    for empty in empties:
        assert render(src, {"a": empty, "b": empty}) == "C"
    assert render("{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}", {"m": {"k": "v"}}) == "v"
    assert render("{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }}", {"m": {}}) == "none"


def test_range_over_lists_and_sorted_maps_with_variables() -> None:
    assert render("{{ range .Values.l }}[{{ . }}]{{ end }}", {"l": [1, 2]}) == "[1][2]"
    src = "{{ range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ end }}"
    assert render(src, {"m": {"b": 2, "a": 1}}) == "a=1;b=2;"
    assert render("{{ range .Values.l }}x{{ else }}empty{{ end }}", {"l": []}) == "empty"
    # Missing values range over nothing, as in Go.
    assert render("{{ range .Values.nope }}x{{ end }}") == ""
    # `$` is the root inside range; variables declared in a block stay in it.
    assert render("{{ range .Values.l }}{{ $.Values.s }}{{ end }}", {"l": [1, 2], "s": "s"}) == (
        "ss"
    )
    with pytest.raises(TemplateError, match="undefined variable"):
        render("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}")


def test_define_and_include_with_a_dict_context() -> None:
    helpers = '{{- define "n" -}}{{ .root.Values.a }}-{{ .suffix }}{{- end }}'
    out = render('{{ include "n" (dict "root" . "suffix" "api") }}', {"a": "x"}, h=helpers)
    assert out == "x-api"
    with pytest.raises(TemplateError, match="undefined template"):
        render('{{ include "missing" . }}')


def test_helm_functions() -> None:
    v = {"m": {"b": [1, 2], "a": "x"}, "s": "hello", "e": "", "n": 8000, "f": 1.0}
    assert render("{{ toYaml .Values.m }}", v) == "a: x\nb:\n- 1\n- 2"
    assert render("k:{{ toYaml .Values.m | nindent 2 }}", v) == "k:\n  a: x\n  b:\n  - 1\n  - 2"
    assert render("{{ .Values.s | indent 2 }}", v) == "  hello"
    assert render("{{ .Values.n | quote }} {{ .Values.f | quote }}", v) == '"8000" "1"'
    assert render('{{ .Values.e | default "d" }} {{ default "d" .Values.s }}', v) == "d hello"
    assert render("{{ .Values.s | b64enc }}", v) == "aGVsbG8="
    assert render('{{ printf "%s-%d" .Values.s .Values.n }}', v) == "hello-8000"
    assert render('{{ printf "%s-x" .Values.s | trunc 5 | trimSuffix "o" }}', v) == "hell"
    assert render("{{ toJson .Values.m }}", v) == '{"a":"x","b":[1,2]}'
    assert render('{{ eq .Values.s "hello" }} {{ ne .Values.n 1 }} {{ not .Values.e }}', v) == (
        "true true true"
    )
    assert render("{{ and .Values.s .Values.e | quote }}|{{ or .Values.e .Values.s }}", v) == (
        '""|hello'
    )
    assert len(render("{{ .Values.s | sha256sum }}", v)) == 64
    helper = '{{- define "y" -}}\nb: "2"\na: "1"\n{{- end }}'
    src = '{{ range $k, $v := (include "y" . | fromYaml) }}{{ $k }}={{ $v }};{{ end }}'
    assert render(src, h=helper) == "a=1;b=2;"


def test_numbers_from_values_are_float64_as_in_helm() -> None:
    r = Renderer()
    r.add("t", "{{ .Values.a }} {{ .Values.b | quote }} {{ .Values.b | int64 | quote }}")
    r.add("y", "{{ toYaml .Values.m }} {{ toJson .Values.m }}")
    ctx = Chart.context_for({"a": 8000, "b": 1048576, "m": {"port": 5432, "ratio": 0.5}})
    assert r.render("t", ctx) == '8000 "1.048576e+06" "1048576"'
    assert r.render("y", ctx) == 'port: 5432\nratio: 0.5 {"port":5432,"ratio":0.5}'
    for value, printed in [(1e6, "1e+06"), (999999, "999999"), (1.5e-5, "1.5e-05"), (-2, "-2")]:
        assert go_float(float(value)) == printed
    r.add("eq", "{{ eq .Values.a 8000 }}")
    with pytest.raises(TemplateError, match="incompatible types"):
        r.render("eq", ctx)


def test_required_fails_unless_linting() -> None:
    with pytest.raises(TemplateError, match=r"x\.y is required"):
        render('{{ required "x.y is required" .Values.e | quote }}', {"e": ""})
    r = Renderer(lint=True)
    r.add("t", '{{ required "x.y is required" .Values.e | quote }}')
    assert r.render("t", {"Values": {"e": ""}}) == '""'
    assert r.warnings == ["x.y is required"]


def test_anything_outside_the_subset_is_refused() -> None:
    for source in (
        "{{ .Values.x | upper }}",
        '{{ template "x" . }}',
        "{{ block }}",
        "{{ if .Values.x }}unclosed",
        "{{ end }}",
        "{{ .Values.x }",
    ):
        with pytest.raises(TemplateError):
            render(source, {"x": "a"})


def test_merge_values_like_helm() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": 1}
    merged = merge_values(base, {"a": {"c": [3]}, "d": None}, {"a": {"f": True}})
    assert merged == {"a": {"b": 1, "c": [3], "f": True}, "e": 1}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": 1}
