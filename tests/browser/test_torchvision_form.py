"""torchvision networks in the dashboard (issue 11): the architecture select groups the paper's networks
and torchvision's, depth and width leave the form for a torchvision network (prune_stream shows only for
resnet and densenet), a job submitted for resnet18 has no depth, and the starting-weights field uploads a
file for the network the form names and selects it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from .conftest import fill, sign_in, wait_for

pytestmark = pytest.mark.browser


def open_form(browser, live_server: str):
    browser.get("about:blank")
    browser.get(f"{live_server}/#/new")
    return wait_for(lambda: browser.find_element(By.ID, "job-form"), what="the job form")


def shown(browser, name: str) -> bool:
    field = browser.find_element(By.CSS_SELECTOR, f"#job-form [data-field='{name}']")
    return field.is_displayed() and browser.find_element(By.ID, f"job-{name}").is_enabled()


def test_resnet18_in_the_form_hides_depth_and_width_and_submits_a_job_without_depth(
    browser, live_server: str, admin_token: str, api: httpx.Client, output_dir: Path
) -> None:
    sign_in(browser, live_server, admin_token)
    open_form(browser, live_server)
    groups = {
        g.get_attribute("label"): [o.get_attribute("value") for o in g.find_elements(By.TAG_NAME, "option")]
        for g in browser.find_elements(By.CSS_SELECTOR, "#job-arch optgroup")
    }
    assert groups["The paper's networks"] == ["vgg", "resnet", "densenet"]
    assert {"resnet18", "mobilenet_v2", "densenet121"} <= set(groups["torchvision"])

    fill(browser, "job-arch", "resnet")
    assert shown(browser, "depth") and shown(browser, "width") and shown(browser, "prune_stream")
    fill(browser, "job-arch", "vgg")
    assert shown(browser, "depth") and not shown(browser, "prune_stream")
    fill(browser, "job-arch", "resnet18")
    assert not shown(browser, "depth") and not shown(browser, "width") and not shown(browser, "prune_stream")
    model = browser.find_element(By.CSS_SELECTOR, "#job-form fieldset:nth-of-type(2)")
    browser.execute_script("arguments[0].scrollIntoView()", model)
    browser.save_screenshot(str(output_dir / "torchvision-form.png"))

    for field, value in {
        "dataset": "digits",
        "epochs": "1",
        "train_subset": "64",
        "test_subset": "32",
        "device": "cpu",
    }.items():
        fill(browser, f"job-{field}", value)
    browser.find_element(By.CSS_SELECTOR, "#job-form button[type='submit']").click()
    wait_for(lambda: "#/jobs/" in browser.current_url, timeout=30, what="the job page after submitting")
    job_id = int(browser.current_url.rsplit("/", 1)[-1])
    config = api.get(f"/api/jobs/{job_id}").json()["config"]
    assert config["arch"] == "resnet18" and config["depth"] is None and config["width"] == 1.0
    lead = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, ".page-head .lead").text, what="the lead")
    assert "resnet18 on digits" in lead and "null" not in lead
    api.post(f"/api/jobs/{job_id}/cancel")  # the test is about the form: no need to train it


def test_the_weights_field_uploads_a_file_for_the_chosen_network_and_selects_it(
    browser, live_server: str, admin_token: str, api: httpx.Client, tmp_path: Path
) -> None:
    import torch

    from proxns_core.models import build_model

    state = tmp_path / "vgg11-quarter.pt"
    torch.save(build_model("vgg", 11, 10, width=0.25).state_dict(), state)
    wrong = tmp_path / "vgg11-half.pt"
    torch.save(build_model("vgg", 11, 10, width=0.5).state_dict(), wrong)

    sign_in(browser, live_server, admin_token)
    open_form(browser, live_server)
    for field, value in {"dataset": "digits", "arch": "vgg", "depth": "11", "width": "0.25"}.items():
        fill(browser, f"job-{field}", value)
    upload = browser.find_element(By.ID, "job-init_weights-file")
    label = browser.find_element(By.CSS_SELECTOR, "label[for='job-init_weights-file']")
    assert label.text == "Upload…"

    # A file that does not fit the network the form names: the API's message beside the field.
    upload.send_keys(str(wrong))
    error = wait_for(
        lambda: browser.find_element(By.ID, "job-init_weights-error").text, timeout=120, what="the refusal"
    )
    assert "Upload refused" in error and "features.0.weight" in error, error

    upload.send_keys(str(state))
    status = wait_for(
        lambda: (
            (t := browser.find_element(By.ID, "job-init_weights-file-status").text).startswith("Uploaded")
            and t
        ),
        timeout=120,
        what="the upload",
    )
    select = Select(browser.find_element(By.ID, "job-init_weights"))
    ref = select.first_selected_option.get_attribute("value")
    assert status == f"Uploaded as {ref}."
    assert select.first_selected_option.text == f"vgg11-quarter.pt: vgg-11 ×0.25, 10 classes ({ref})"
    assert browser.find_element(By.ID, "job-init_weights-error").text == ""
    made = api.get(f"/api/weights/{ref.removeprefix('weights:')}").json()
    assert (made["arch"], made["depth"], made["width"], made["num_classes"]) == ("vgg", 11, 0.25, 10)
    assert api.delete(f"/api/weights/{made['id']}").status_code == 204
