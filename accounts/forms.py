from django import forms

from .models import User


class SignupForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False)
    password_confirm = forms.CharField(
        label="Repeat password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_confirm"):
            self.add_error("password_confirm", "The passwords do not match.")
        return data


class LoginForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), strip=False)


class OtpForm(forms.Form):
    otp = forms.CharField(
        label="6-digit code",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}", "autofocus": True}
        ),
    )


class ReauthForm(forms.Form):
    password = forms.CharField(
        label="Current password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), strip=False
    )
    otp = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args, two_factor: bool = True, **kwargs):
        """Without 2FA on there is no code to ask for: the field is left out."""
        super().__init__(*args, **kwargs)
        if not two_factor:
            del self.fields["otp"]


class PasswordChangeForm(ReauthForm):
    new_password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False)


class EmailChangeForm(ReauthForm):
    new_email = forms.EmailField()

    def clean_new_email(self):
        value = self.cleaned_data["new_email"].lower()
        if User.objects.filter(email__iexact=value).exists():
            raise forms.ValidationError("This email is already registered.")
        return value


class KycForm(forms.Form):
    full_name = forms.CharField(max_length=200, label="Full legal name")
    country = forms.CharField(
        max_length=2, min_length=2, label="Country of residence", help_text="Two-letter ISO code, e.g. DE, FR, US."
    )
    date_of_birth = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    document = forms.FileField(
        label="Identity document",
        help_text="Passport or ID card: PDF, PNG or JPEG, at most 5 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"}),
    )


class ResetSetPasswordForm(forms.Form):
    """Password reset: sets the password through the service, so the 24 h withdrawal pause starts.

    A reset never touches 2FA: the next sign-in still asks for the code.
    """

    new_password1 = forms.CharField(
        label="New password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )
    new_password2 = forms.CharField(
        label="Repeat new password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self):
        from django.contrib.auth.password_validation import validate_password

        data = super().clean()
        if data.get("new_password1") != data.get("new_password2"):
            self.add_error("new_password2", "The passwords do not match.")
        elif data.get("new_password1"):
            try:
                validate_password(data["new_password1"], user=self.user)
            except forms.ValidationError as exc:
                self.add_error("new_password1", exc)
        return data

    def save(self, commit=True):
        from .services import password_set

        password_set(user=self.user, new_password=self.cleaned_data["new_password1"])
        return self.user
