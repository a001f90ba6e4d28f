from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("notes", views.NoteViewSet, basename="note")

urlpatterns = [
    path("", views.index, name="index"),
    path("api/profile/", views.MyProfileView.as_view(), name="my-profile"),
    path("api/", include(router.urls)),
]
