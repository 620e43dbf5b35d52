"""The page: vuetify3 controls around the Slicer views, bound to trame state keys (``fv_*``).

Layout, as in the paper's Figure 1 reduced to four views: a drawer with
the data, method, gamma and layer controls and "Save scene"; the MRI,
fused and PET slice views in a row; below them the zoom view, the
scatterplot and the principal-pixel readout. Elements tests and the benchmark look for carry
``id`` or ``data-*`` attributes.
"""
from __future__ import annotations

from trame.widgets import client, html
from trame.widgets import vuetify3 as v
from trame_vuetify.ui.vuetify3 import VAppLayout

from .slice_views import LAYERS, MAIN_VIEWS, ZOOM_VIEW

GAMMA_MIN, GAMMA_MAX, GAMMA_STEP = 0.1, 2.0, 0.05
HOOD_MIN, HOOD_MAX = 3, 63

PAGE_STYLE = """
html { overflow: hidden; }
.fusevis-view { position: relative; flex: 1 1 0; min-width: 0; min-height: 0; border: 1px solid #222; background: black; }
.fusevis-view-label { position: absolute; top: 4px; left: 4px; z-index: 2; display: flex; gap: 4px; align-items: center; }
.fusevis-readout td { padding: 1px 6px !important; font-size: 12px; height: 20px !important; }
.v-alert { overflow-wrap: anywhere; }
"""


def view_overlay(server, _view_id: str, view) -> None:
    """Inside each slice view: its name and, for the main views, the layer switch."""
    name = view.get_singleton_tag()
    with html.Div(classes="fusevis-view-label", raw_attrs=[f'data-fusevis-view="{name}"']):
        v.VChip(name, size="small", color="grey-darken-3", variant="flat", label=True)
        if name in LAYERS:
            with v.VBtnToggle(
                v_model=(f"fv_layer_{name}",), mandatory=True, density="compact", divided=True,
                color="green-darken-2", base_color="grey-darken-3", variant="flat", rounded="sm",
            ):
                for key, layer in LAYERS[name].items():
                    v.VBtn(layer.title, value=key, size="x-small", raw_attrs=[f'data-fusevis-layer="{name}:{key}"'])


def build_page(server, ctrl_upload, templates: dict[str, str]) -> VAppLayout:
    """The whole page; ``ctrl_upload(role, files)`` receives uploaded files, ``templates`` names each view's template."""
    layout = VAppLayout(server, theme="light")
    with layout:
        client.Style(PAGE_STYLE)
        with v.VAppBar(density="compact", color="grey-darken-4"):
            v.VAppBarNavIcon(click="fv_drawer = !fv_drawer")
            v.VToolbarTitle("FuseVis — explainable MRI–PET fusion", classes="text-body-1")
            html.Div("{{ fv_pair }}", classes="text-caption mx-4 text-grey-lighten-1", id="fusevis-pair")
            v.VSpacer()
            html.Div("{{ fv_rate }}", classes="text-caption mx-4 text-grey-lighten-1", id="fusevis-rate")
        with v.VNavigationDrawer(v_model=("fv_drawer", True), width=330, permanent=True):
            _drawer(server, ctrl_upload)
        with v.VMain():
            _content(templates)
    return layout


def _drawer(server, ctrl_upload) -> None:
    with html.Div(classes="pa-3 d-flex flex-column ga-2"):
        _messages()
        _progress()
        with v.VCard(variant="outlined", density="compact"):
            v.VCardTitle("Fusion", classes="text-subtitle-2")
            with v.VCardText(classes="pb-1"):
                v.VSelect(
                    label="Method", v_model=("fv_method",), items=("fv_methods", []), density="compact",
                    hide_details=True, id="fusevis-method", disabled=("!fv_ready || !!fv_busy || fv_loading",),
                )
                _slider("Gamma 1 (Jacobian images)", "fv_gamma1", GAMMA_MIN, GAMMA_MAX, GAMMA_STEP, "fusevis-gamma1")
                _slider("Gamma 2 (guidance images)", "fv_gamma2", GAMMA_MIN, GAMMA_MAX, GAMMA_STEP, "fusevis-gamma2")
                _slider("Neighbourhood (pixels)", "fv_hood", HOOD_MIN, HOOD_MAX, 2, "fusevis-hood")
                _slider("Slice", "fv_slice", 0, ("fv_slices - 1",), 1, "fusevis-slice")
        with v.VCard(variant="outlined", density="compact"):
            v.VCardTitle("Layers", classes="text-subtitle-2")
            with v.VCardText(classes="pb-1"):
                html.Div("Switch each view's layer on the view itself.", classes="text-caption")
                _slider("Anatomy under saliency images", "fv_opacity", 0.0, 1.0, 0.05, "fusevis-opacity")
                v.VSelect(
                    label="Zoom view shows", v_model=("fv_zoom_source",), items=("fv_zoom_sources", list(MAIN_VIEWS)),
                    density="compact", hide_details=True, classes="mt-2",
                )
                v.VSwitch(label="Crosshair", v_model=("fv_crosshair",), density="compact", hide_details=True, color="green")
        _data_card(server, ctrl_upload)
        _save_card()


def _slider(label: str, key: str, low, high, step, element_id: str) -> None:
    html.Div(f"{label}: {{{{ {key} }}}}", classes="text-caption mt-2")
    v.VSlider(
        v_model=(key,), min=low, max=high, step=step, density="compact", hide_details=True,
        id=element_id, color="green-darken-2", disabled=("!fv_ready",),
    )


def _messages() -> None:
    v.VAlert(
        v_if=("fv_error",), text=("fv_error",), type="error", density="compact", closable=True,
        id="fusevis-error", click_close="fv_error = ''", classes="text-body-2",
    )
    v.VAlert(v_if=("fv_notice",), text=("fv_notice",), type="info", density="compact", id="fusevis-notice", classes="text-body-2")
    # A network being loaded and planned on the server (seconds): the page and the views stay live meanwhile.
    with v.VAlert(v_if=("fv_busy",), type="info", variant="tonal", density="compact", id="fusevis-busy", classes="text-body-2"):
        html.Div("{{ fv_busy }}")
        v.VProgressLinear(indeterminate=True, color="blue", height=3, classes="mt-1")


def _progress() -> None:
    with v.VCard(variant="outlined", density="compact", id="fusevis-progress"):
        with v.VCardText(classes="py-2"):
            html.Div("{{ fv_phase }}", classes="text-caption", id="fusevis-phase")
            html.Div("Fused slices {{ fv_fused_done }} / {{ fv_total }}", classes="text-caption")
            v.VProgressLinear(model_value=("fv_total ? 100 * fv_fused_done / fv_total : 0",), color="green", height=4)
            html.Div("Guidance slices {{ fv_guidance_done }} / {{ fv_total }}", classes="text-caption")
            v.VProgressLinear(model_value=("fv_total ? 100 * fv_guidance_done / fv_total : 0",), color="orange", height=4)
            with html.Div(classes="d-flex ga-2 mt-2"):
                v.VBtn("Cancel", click="trigger('fv_cancel')", size="small", color="red-darken-1", variant="tonal",
                       disabled=("!fv_cancellable",), id="fusevis-cancel")
                v.VBtn("Resume", click="trigger('fv_resume')", size="small", variant="tonal",
                       disabled=("!fv_paused || fv_loading",), id="fusevis-resume")


def _data_card(server, ctrl_upload) -> None:
    with v.VCard(variant="outlined", density="compact"):
        v.VCardTitle("Data (NIfTI files or DICOM series)", classes="text-subtitle-2")
        with v.VCardText(classes="pb-2"):
            for role, label in (("mri", "MRI"), ("pet", "PET")):
                v.VFileInput(
                    label=f"Upload {label} (a NIfTI file or all files of a DICOM series)", multiple=True, density="compact",
                    hide_details=True, prepend_icon="mdi-upload", id=f"fusevis-upload-{role}",
                    change=f"trigger('{server.controller.trigger_name(ctrl_upload)}', ['{role}', $event.target.files])",
                    disabled=("fv_loading",),
                )
                v.VTextField(
                    label=f"{label} path on the server", v_model=(f"fv_{role}_path",), density="compact",
                    hide_details=True, id=f"fusevis-{role}-path", classes="mb-2", disabled=("fv_loading",),
                )
            v.VCheckbox(label="Already registered (skip registration)", v_model=("fv_already_registered",),
                        density="compact", hide_details=True)
            with html.Div(classes="d-flex ga-2"):
                v.VBtn("Load pair", click="trigger('fv_load')", color="green-darken-2", size="small",
                       disabled=("fv_loading || !!fv_busy",), id="fusevis-load")
                v.VBtn("Demo", click="trigger('fv_load_demo')", size="small", variant="tonal",
                       disabled=("fv_loading || !!fv_busy",), id="fusevis-load-demo")


def _save_card() -> None:
    with v.VCard(variant="outlined", density="compact"):
        v.VCardTitle("Save (Slicer scene bundle, .mrb)", classes="text-subtitle-2")
        with v.VCardText(classes="pb-2"):
            v.VTextField(
                label="Folder on the server", v_model=("fv_save_dir",), density="compact", hide_details=True,
                id="fusevis-save-dir", classes="mb-2",
            )
            v.VBtn("Save scene", click="trigger('fv_save')", size="small", color="green-darken-2", id="fusevis-save",
                   loading=("fv_saving",), disabled=("!fv_ready || fv_saving || fv_loading",))
            html.Div("Saved {{ fv_saved }}", v_if=("fv_saved",), classes="text-caption mt-1", id="fusevis-saved",
                     raw_attrs=[':data-path="fv_saved"'])


def _content(templates: dict[str, str]) -> None:
    with html.Div(style="display: flex; flex-direction: column; height: calc(100vh - 48px); background: #111;"):
        with html.Div(style="display: flex; flex: 3 1 0; min-height: 0;"):
            for name in MAIN_VIEWS:
                with html.Div(classes="fusevis-view", id=f"fusevis-view-{name}"):
                    client.ServerTemplate(name=templates[name])
        with html.Div(style="display: flex; flex: 2 1 0; min-height: 0; background: white;"):
            with html.Div(classes="fusevis-view", id=f"fusevis-view-{ZOOM_VIEW}", style="flex: 1 1 0;"):
                client.ServerTemplate(name=templates[ZOOM_VIEW])
            with html.Div(style="flex: 1 1 0; display: flex; flex-direction: column; align-items: center; justify-content: center;"):
                html.Img(src=("fv_scatter",), v_if=("fv_scatter",), id="fusevis-scatter", style="max-width: 100%; max-height: 100%;")
                html.Div("Scatterplot: guidance of the slice (black), neighbourhood (green); appears once the slice's "
                         "guidance images are computed", v_if=("!fv_scatter",), classes="text-caption pa-4 text-grey")
            with html.Div(style="flex: 1 1 0; overflow: auto;", id="fusevis-readout", raw_attrs=[':data-fusevis-seq="fv_readout_seq"']):
                html.Div("Principal pixel (hover a view)", classes="text-subtitle-2 px-2 pt-1")
                with v.VTable(density="compact", classes="fusevis-readout"):
                    with html.Tbody():
                        with html.Tr(v_for="row in fv_readout", key="row.key", raw_attrs=[':data-field="row.key"']):
                            html.Td("{{ row.label }}", classes="text-grey-darken-1")
                            html.Td("{{ row.text }}", title=("row.exact",), raw_attrs=[':data-exact="row.exact"'])
