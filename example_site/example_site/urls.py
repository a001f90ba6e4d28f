"""URLs: the page, the notes API, login/logout and the admin."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("", include("notes.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(extra_context={"demo_hint": settings.DEBUG}), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
