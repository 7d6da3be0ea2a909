"""The administration page (/admin): users (create, disable and enable with the user's own browser
sent to sign-in, role, quota, delete after typing the name, the last administrator kept), everyone's
usage, the audit log (entries, filter, rendered as text); hidden from and refused to non-admins;
both languages."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.accounts_helpers import (
    browser_page,
    open_user_menu,
    sign_in,
    signed_in_as,
)
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import send, wait_reply_done


def user_row(page, username: str):
    return page.locator(f".users-table tr[data-username='{username}']")


def confirm(page) -> None:
    page.locator("dialog.modal.small button[value=ok]").click()
    expect(page.locator("dialog.modal.small")).to_have_count(0)


def test_admin_manages_users_and_reads_the_audit_log(browser, accounts_web) -> None:
    accounts_web.user("root", role="admin")
    with browser_page(browser, accounts_web, "/") as page, browser_page(browser, accounts_web, "/") as bob_page:
        sign_in(page, "root")
        signed_in_as(page, "root")
        open_user_menu(page).locator("[data-menu=administration]").click()
        assert page.url == accounts_web.url + "/admin"
        expect(user_row(page, "root")).to_contain_text("(you)")

        # Create bob; he signs in and chats in his own browser.
        form = page.locator("#create-user-form")
        expect(form.locator("input[name=password]")).to_have_attribute("autocomplete", "new-password")
        form.locator("input[name=username]").fill("bob")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        expect(user_row(page, "bob")).to_contain_text("Enabled")
        form.locator("input[name=username]").fill("BOB")
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        expect(page.locator(".create-user .form-error")).to_have_text("This username is taken.")
        sign_in(bob_page, "bob")
        signed_in_as(bob_page, "bob")
        send(bob_page, "hello from bob")
        wait_reply_done(bob_page)

        # Disable: bob's next action sends his browser to sign-in, and he cannot sign in.
        user_row(page, "bob").locator("[data-action=disable]").click()
        confirm(page)
        expect(user_row(page, "bob")).to_contain_text("Disabled")
        bob_page.locator("#composer-input").fill("are you there?")
        bob_page.locator("#composer-input").press("Enter")
        expect(bob_page.locator("#login-notice")).to_contain_text("You were signed out")
        sign_in(bob_page, "bob")
        expect(bob_page.locator("#login-form .form-error")).to_contain_text("the account is disabled")
        user_row(page, "bob").locator("[data-action=enable]").click()
        expect(user_row(page, "bob")).to_contain_text("Enabled")
        sign_in(bob_page, "bob")
        signed_in_as(bob_page, "bob")
        expect(bob_page.locator("#composer-input")).to_have_value("are you there?")

        # An administrator's password reset: checked here first; bob's sign-ins end.
        user_row(page, "bob").locator("[data-action=resetPassword]").click()
        dialog = page.locator("dialog.modal.small")
        dialog.locator("input[name=new]").fill("reset by root")
        dialog.locator("input[name=repeat]").fill("reset by rooT")
        expect(dialog.locator("button[value=ok]")).to_be_disabled()
        dialog.locator("input[name=repeat]").fill("reset by root")
        with page.expect_response(lambda r: r.request.method == "PATCH") as reset:
            confirm(page)
        assert reset.value.status == 200 and "reset by root" in reset.value.request.post_data
        bob_page.locator("#new-chat").click()
        bob_page.locator("#conversation-list .conv-item").first.click()
        expect(bob_page.locator("#login-notice")).to_be_visible()
        sign_in(bob_page, "bob", "reset by root")
        signed_in_as(bob_page, "bob")

        # Quota: bob's own values against what applies.
        user_row(page, "bob").locator("[data-action=quota]").click()
        expect(dialog.locator("[data-limit=tokens_per_day]")).to_have_text("no limit")
        expect(dialog.locator("[data-limit=requests_per_minute]")).to_have_text("60")
        dialog.locator("input[name=tokens_per_day]").fill("5000")
        dialog.locator("input[name=requests_per_minute]").fill("0")
        expect(dialog.locator("button[value=ok]")).to_be_disabled()  # 0 is not a limit
        dialog.locator("input[name=requests_per_minute]").fill("")
        confirm(page)
        expect(page.locator(".toast").last).to_contain_text("Quota of bob saved.")
        bob = accounts_web.accounts.users.find_user("bob")
        assert accounts_web.accounts.ledger.get_quota_overrides(bob.id).tokens_per_day == 5000
        user_row(page, "bob").locator("[data-action=quota]").click()
        expect(dialog.locator("input[name=tokens_per_day]")).to_have_value("5000")
        expect(dialog.locator("[data-limit=tokens_per_day]")).to_have_text("5,000")
        dialog.locator("button[value=cancel]").click()

        # Role, and the last administrator is kept.
        user_row(page, "root").locator("select[data-action=role]").select_option("user")
        expect(page.locator("#admin-users > .form-error")).to_have_text(
            "This is the last enabled administrator: make another user an administrator first."
        )
        expect(user_row(page, "root").locator("select")).to_have_value("admin")
        with page.expect_response(lambda r: r.request.method == "PATCH") as promoted:
            user_row(page, "bob").locator("select[data-action=role]").select_option("admin")
        assert promoted.value.json()["role"] == "admin"
        expect(user_row(page, "bob").locator("select")).to_have_value("admin")

        # Everyone's usage.
        page.locator(".tab[data-tab=usage]").click()
        expect(page.locator(".usage-table tr[data-user=bob] td").nth(1)).to_have_text("1")

        # Delete bob: the button waits for his name typed exactly.
        page.locator(".tab[data-tab=users]").click()
        user_row(page, "bob").locator("[data-action=delete]").click()
        typed = dialog.locator("input[name=confirm]")
        expect(dialog.locator("button[value=ok]")).to_be_disabled()
        typed.fill("Bob")
        expect(dialog.locator("button[value=ok]")).to_be_disabled()
        typed.fill("bob")
        confirm(page)
        expect(user_row(page, "bob")).to_have_count(0)
        assert accounts_web.accounts.users.find_user("bob") is None

        # The audit log has it all, newest first; one kind of event at a time.
        page.locator(".tab[data-tab=audit]").click()
        events = page.locator(".audit-table tbody tr")
        expect(events.first).to_have_attribute("data-event", "user_deleted")
        seen = events.evaluate_all("rows => rows.map(r => r.dataset.event)")
        for event in (
            "user_created",
            "login",
            "user_disabled",
            "login_failed",
            "user_enabled",
            "quota_changed",
            "role_changed",
            "user_deleted",
        ):
            assert event in seen, (event, seen)
        deleted = events.first
        expect(deleted.locator(".audit-actor")).to_have_text("root")
        expect(deleted.locator(".audit-target")).to_have_text("bob")
        expect(deleted.locator(".audit-event")).to_have_text("User deleted")
        quota = page.locator(".audit-table tr[data-event=quota_changed]")
        expect(quota.locator(".audit-details")).to_contain_text("tokens_per_day: 5000")
        page.locator("#audit-event").select_option("user_disabled")
        expect(events).to_have_count(1)
        expect(events.first.locator(".audit-target")).to_have_text("bob")
        expect(page.locator("[data-page=older]")).to_be_disabled()
        expect(page.locator("[data-page=newer]")).to_be_disabled()


def test_audit_log_pages(browser, accounts_web) -> None:
    root = accounts_web.user("root", role="admin")
    for i in range(55):
        accounts_web.accounts.ledger.audit("login_failed", target=f"guess{i:02}", ip="192.0.2.7")
    with browser_page(browser, accounts_web, "/admin") as page:
        sign_in(page, "root")
        page.locator(".tab[data-tab=audit]").click()
        rows = page.locator(".audit-table tbody tr")
        expect(rows).to_have_count(50)
        expect(rows.first).to_have_attribute("data-event", "login")  # the sign-in just now
        expect(page.locator(".page-label")).to_have_text("Page 1")
        page.locator("[data-page=older]").click()
        expect(page.locator(".page-label")).to_have_text("Page 2")
        expect(rows).to_have_count(6)
        expect(rows.last.locator(".audit-target")).to_have_text("guess00")
        expect(page.locator("[data-page=older]")).to_be_disabled()
        page.locator("[data-page=newer]").click()
        expect(rows).to_have_count(50)
    assert root.role == "admin"


def test_non_admins_see_no_admin_entry_and_are_refused(browser, accounts_web) -> None:
    accounts_web.user("carol")
    with browser_page(browser, accounts_web, "/admin") as page:
        sign_in(page, "carol")
        signed_in_as(page, "carol")
        expect(page.locator(".needs-admin")).to_have_text("This page needs an administrator.")
        expect(page.locator(".users-table")).to_have_count(0)
        menu = open_user_menu(page)
        expect(menu.locator("[data-menu]")).to_have_text(["Account", "Sign out"])
        menu.locator("[data-menu=account]").click()
        expect(page.locator("#page")).not_to_contain_text("Administration")


def test_audit_details_render_as_text(browser, accounts_web) -> None:
    payload = "<img src=x onerror=alert(1)>"
    accounts_web.user("root", role="admin")
    with browser_page(browser, accounts_web, "/login") as page:
        sign_in(page, payload, "whatever it is")  # failed sign-ins are audited with the typed name
        expect(page.locator("#login-form .form-error")).to_be_visible()
        accounts_web.accounts.ledger.audit(
            "export", target="<svg onload=alert(2)>", details='"><script>alert(3)</script>'
        )
        sign_in(page, "root")
        signed_in_as(page, "root")
        page.goto(accounts_web.url + "/admin")
        page.locator(".tab[data-tab=audit]").click()
        expect(page.locator(".audit-table tr[data-event=login_failed] .audit-target")).to_have_text(payload)
        export_details = page.locator(".audit-table tr[data-event=export] .audit-details")
        expect(export_details).to_contain_text("<script>alert(3)</script>")
        page.wait_for_timeout(300)
        assert page.locator("#page img, #page svg:not(.icon), #page script").count() == 0
        # the watch fails the test on any dialog (alert) the page opened


def test_the_account_views_in_chinese(browser, accounts_web) -> None:
    accounts_web.user("root", role="admin")
    with browser_page(browser, accounts_web, "/", locale="zh-CN") as page:
        expect(page.locator("#auth-title")).to_have_text("登录明言")
        expect(page.locator("#login-submit")).to_have_text("登录")
        sign_in(page, "root", "wrong password")
        expect(page.locator("#login-form .form-error")).to_have_text("用户名或密码错误，或该账户已停用。")
        sign_in(page, "root")
        signed_in_as(page, "root")
        menu = open_user_menu(page)
        expect(menu.locator("[data-menu]")).to_have_text(["账户", "管理", "退出登录"])
        menu.locator("[data-menu=administration]").click()
        expect(page.locator(".tab")).to_have_text(["用户", "用量", "审计日志", "举报", "关键词库", "正在生成的回答"])
        expect(page.locator(".users-table th")).to_have_text(["用户名", "身份", "状态", "创建时间", "操作"])
        expect(page.locator("#conversation-title")).to_have_text("管理")
        page.goto(accounts_web.url + "/account")
        expect(page.locator(".card h2")).to_have_text(
            ["个人信息", "修改密码", "API 密钥", "我的用量", "我的举报", "删除账户"]
        )
        page.locator("#toggle-language").click()  # and back to English, in place
        expect(page.locator(".card h2")).to_have_text(
            ["Profile", "Change password", "API keys", "My usage", "My reports", "Delete my account"]
        )
        expect(page.locator("#conversation-title")).to_have_text("Account")


def test_the_account_views_fit_a_phone(browser, accounts_web) -> None:
    accounts_web.user("root", role="admin")
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    with browser_page(browser, accounts_web, "/admin", **phone) as page:
        wide = "document.documentElement.scrollWidth"
        expect(page.locator("#login-form")).to_be_visible()
        assert page.evaluate(wide) <= 390
        sign_in(page, "root")
        expect(page.locator(".users-table")).to_be_visible()
        assert page.evaluate(wide) <= 390  # the table scrolls inside its box
        page.locator(".tab[data-tab=audit]").tap()
        expect(page.locator(".audit-table")).to_be_visible()
        assert page.evaluate(wide) <= 390
        page.locator("#user-button").tap()
        page.locator("[data-menu=account]").tap()
        expect(page.locator("#password-form")).to_be_visible()
        assert page.evaluate(wide) <= 390
        box = page.locator("#user-button").bounding_box()
        assert box["x"] + box["width"] <= 390
