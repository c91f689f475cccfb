"""The floor's two flows: a three-step activation wizard and a two-step sign-in."""

import secrets

import pyotp
from django import forms
from django.contrib.auth import authenticate, login, password_validation
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare
from formtools.wizard.views import SessionWizardView

ACTIVATION_CODE = "ABCDE-12345"  # the paper code of every floor citizen


class CodeForm(forms.Form):
    activation_code = forms.CharField(max_length=11)

    def clean_activation_code(self):
        code = self.cleaned_data["activation_code"]
        if not constant_time_compare(code.upper(), ACTIVATION_CODE):
            raise forms.ValidationError("Wrong code.")
        return code


class AccountForm(forms.Form):
    username = forms.CharField(max_length=64)
    password = forms.CharField(widget=forms.PasswordInput)
    password_confirm = forms.CharField(widget=forms.PasswordInput)

    def clean(self):
        data = super().clean()
        if data.get("password") != data.get("password_confirm"):
            raise forms.ValidationError("The passwords differ.")
        if data.get("password"):
            password_validation.validate_password(
                data["password"], User(username=data.get("username", ""))
            )
        return data


class VerifyForm(forms.Form):
    code = forms.CharField(max_length=6)

    def __init__(self, *args, check=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.check = check

    def clean_code(self):
        code = self.cleaned_data["code"]
        if self.check is None or not self.check(code):
            raise forms.ValidationError("Wrong code.")
        return code


class FloorWizard(SessionWizardView):
    form_list = [("code", CodeForm), ("account", AccountForm), ("verify", VerifyForm)]
    template_name = "floor/wizard.html"

    def get_form_kwargs(self, step=None):
        if step != "verify":
            return {}
        extra = self.storage.extra_data
        if self.kwargs["kind"] == "app":
            secret = extra.get("secret", "")
            return {
                "check": lambda code: (
                    bool(secret) and pyotp.TOTP(secret).verify(code, valid_window=1)
                )
            }
        return {"check": lambda code: constant_time_compare(code, extra.get("code", "-"))}

    def process_step(self, form):
        if self.steps.current == "account":
            extra = self.storage.extra_data
            if self.kwargs["kind"] == "app":
                extra["secret"] = pyotp.random_base32(32)
            else:
                extra["code"] = f"{secrets.randbelow(10**6):06d}"
                username = form.cleaned_data["username"]
                send_mail(
                    "Your code", f"Your code: {extra['code']}\n", None, [f"{username}@example.be"]
                )
            self.storage.extra_data = extra
        return super().process_step(form)

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        context["secret"] = self.storage.extra_data.get("secret", "")
        return context

    def done(self, form_list, form_dict, **kwargs):
        account = form_dict["account"].cleaned_data
        user = User(username=account["username"], email=f"{account['username']}@example.be")
        user.set_password(account["password"])  # the one argon2 hash
        user.save()  # the one INSERT
        return redirect("done")


wizard = FloorWizard.as_view()


def done(request):
    return render(request, "floor/page.html", {"text": "Your key is activated."})


class LoginForm(forms.Form):
    username = forms.CharField()
    password = forms.CharField(widget=forms.PasswordInput)


def login_view(request):
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(request, **form.cleaned_data)
        if user is not None:
            code = f"{secrets.randbelow(10**6):06d}"
            request.session.cycle_key()
            request.session["pending"] = {"user_id": user.pk, "code": code}
            send_mail("Your security code", f"Your code: {code}\n", None, [user.email])
            return redirect("login-code")
        form.add_error(None, "Wrong username or password.")
    return render(request, "floor/form.html", {"form": form})


def login_code_view(request):
    pending = request.session.get("pending")
    if not pending:
        return redirect("login")
    form = VerifyForm(
        request.POST or None, check=lambda code: constant_time_compare(code, pending["code"])
    )
    if request.method == "POST" and form.is_valid():
        del request.session["pending"]
        login(request, User.objects.get(pk=pending["user_id"]))
        return redirect("home")
    return render(request, "floor/form.html", {"form": form})


@login_required
def home(request):
    return render(request, "floor/page.html", {"text": f"Signed in as {request.user.username}."})
